import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // PGlite boots a WASM Postgres (seconds on a cold machine); PostgreSQL tests create databases.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
