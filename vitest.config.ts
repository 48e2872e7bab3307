import { defineConfig } from "vitest/config";

// One run over every package and service; each has its own vitest.config.ts (a vitest project).
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "services/*/vitest.config.ts"],
  },
});
