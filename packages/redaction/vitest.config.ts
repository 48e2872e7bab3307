import { defineProject } from "vitest/config";

export default defineProject({
  test: { name: "redaction", include: ["test/**/*.test.ts"] },
});
