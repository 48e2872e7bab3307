#!/usr/bin/env node
// Runs mission-control-lite so a user can try Clasper locally: `node packages/control-plane/dist/mission-control-lite-bin.js`.
import { z } from "zod";
import { ConfigError, parseConfig, port } from "@clasper/core";
import { createMissionControlLite } from "./lite/server.js";

let config;
try {
  config = parseConfig({
    MC_LITE_PORT: port(9001),
    MC_LITE_HOST: z.string().default("127.0.0.1"),
    AGENT_JWT_SECRET: z.string({ required_error: "is required (the secret Clasper signs X-Agent-Token with)" })
      .min(32, "must be at least 32 bytes (generate one with: openssl rand -base64 48)"),
  });
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

const lite = await createMissionControlLite({
  agentSecret: config.AGENT_JWT_SECRET,
  port: config.MC_LITE_PORT,
  host: config.MC_LITE_HOST,
});
console.log(`mission-control-lite (Control Plane Contract v1, in memory) listening on ${lite.url}`);
console.log(`point Clasper at it with BACKEND_URL=${lite.url}; check it with CONTROL_PLANE_URL=${lite.url} clasper-conformance`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void lite.close().then(() => process.exit(0));
  });
}
