import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    // Tests start local JWKS servers; a stuck fetch should fail fast, not hang the run.
    testTimeout: 10_000,
  },
});
