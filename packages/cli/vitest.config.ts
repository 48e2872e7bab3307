import { defineProject } from "vitest/config";

// System tier: the whole system (one process, or services as child processes) behind the gateway,
// on the backend CLASPER_TEST_DB selects.
export default defineProject({
  test: {
    name: "system",
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
