import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The OTLP and HTTP/2 tests talk to loopback servers; keep files apart so ports and global
    // context-manager state never interleave across files.
    fileParallelism: false,
    testTimeout: 10_000,
  },
});
