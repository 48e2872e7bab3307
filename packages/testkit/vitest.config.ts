import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "testkit",
    include: ["test/**/*.test.ts"],
    // The retry tests wait out real Retry-After delays and SDK backoff.
    testTimeout: 30_000,
  },
});
