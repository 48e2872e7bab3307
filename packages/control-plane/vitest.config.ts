import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "control-plane",
    include: ["test/**/*.test.ts"],
    // Every test talks to a loopback mission-control-lite; a stuck request should fail fast.
    testTimeout: 10_000,
  },
});
