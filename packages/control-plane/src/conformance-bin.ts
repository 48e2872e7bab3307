#!/usr/bin/env node
// Checks a Control Plane backend against Contract v1 and writes conformance.json and junit.xml.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { mintAgentToken } from "@clasper/auth";
import { ConfigError, parseConfig } from "@clasper/core";
import { runConformance, toJUnitXml } from "./conformance.js";

let config;
try {
  config = parseConfig({
    CONTROL_PLANE_URL: z.string().url().default("http://127.0.0.1:9001"),
    AGENT_TOKEN: z.string().optional(),
    AGENT_JWT_SECRET: z.string().min(32, "must be at least 32 bytes").optional(),
    CONFORMANCE_TENANT_ID: z.string().default("conformance"),
    CONFORMANCE_USER_ID: z.string().default("conformance"),
    CONFORMANCE_AGENT_ROLE: z.string().default("jarvis"),
    CONFORMANCE_REPORT_DIR: z.string().default("./conformance-results"),
  });
  if (!config.AGENT_TOKEN && !config.AGENT_JWT_SECRET) {
    throw new ConfigError([{ variable: "AGENT_TOKEN", reason: "is required (or set AGENT_JWT_SECRET to mint one)" }]);
  }
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

const { AGENT_TOKEN: fixed, AGENT_JWT_SECRET: secret } = config;
const token = fixed
  ? fixed
  : () => mintAgentToken({ secret: secret!, tenantId: config.CONFORMANCE_TENANT_ID, userId: config.CONFORMANCE_USER_ID, agentRole: config.CONFORMANCE_AGENT_ROLE });

const report = await runConformance({ baseUrl: config.CONTROL_PLANE_URL, token });
for (const r of report.results) {
  console.log(`${r.status === "passed" ? "PASS" : "FAIL"}  ${r.name}${r.error ? `: ${r.error}` : ""}`);
}
console.log(`\n${report.passed} passed, ${report.failed} failed against ${report.baseUrl}`);

const dir = path.resolve(config.CONFORMANCE_REPORT_DIR);
await mkdir(dir, { recursive: true });
await writeFile(path.join(dir, "conformance.json"), `${JSON.stringify(report, null, 2)}\n`);
await writeFile(path.join(dir, "junit.xml"), toJUnitXml(report));
console.log(`reports: ${path.join(dir, "conformance.json")}, ${path.join(dir, "junit.xml")}`);
process.exit(report.failed > 0 ? 1 : 0);
