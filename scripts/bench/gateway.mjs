// `pnpm bench gateway [--duration S] [--connections N] [--postgres URL]`
// What the REST edge costs: GET and POST /retention/policy through the one-process system
// (JWT verification, request binding, signed internal context, in-memory Connect call with the full
// interceptor stack, a database round trip, JSON rendering) against a baseline bare Node HTTP
// server answering the same JSON, measured in the same run with the same load generator.
import { parseArgs } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SignJWT } from "jose";
import { freePort, load, row, startChild } from "./_support.mjs";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    postgres: { type: "string" },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const secret = "bench-secret-that-is-long-enough-0123456789abcdef";
const payload = JSON.stringify({ policy: { retention_days: 30, sampling_strategy: "errors_only", storage_mode: "full", sample_rate: 0.1, is_default: false } });

const baselinePort = await freePort();
const baselineScript = `require("node:http").createServer((req, res) => { let n = 0; req.on("data", (c) => n += c.length); req.on("end", () => { res.writeHead(200, {"content-type": "application/json"}); res.end(${JSON.stringify(payload)}); }); }).listen(${baselinePort}, "127.0.0.1");`;
const baseline = await startChild(process.execPath, ["-e", baselineScript], { url: `http://127.0.0.1:${baselinePort}/` });

const port = await freePort();
const dataDir = await mkdtemp(path.join(tmpdir(), "clasper-bench-"));
const system = await startChild(process.execPath, [path.join(root, "packages/cli/dist/bin.js"), "serve"], {
  env: {
    CLASPER_PORT: String(port),
    CLASPER_HOST: "127.0.0.1",
    CLASPER_DATA_DIR: dataDir,
    CLASPER_AUTH_JWT_SECRET: secret,
    LOG_LEVEL: "warn",
    NODE_ENV: "production",
    ...(values.postgres ? { DATABASE_URL: values.postgres } : {}),
  },
  url: `http://127.0.0.1:${port}/healthz`,
});

const token = await new SignJWT({ tenant_id: "bench", user_id: "bench", roles: ["admin"] })
  .setProtectedHeader({ alg: "HS256" })
  .setIssuedAt()
  .setExpirationTime("1h")
  .sign(new TextEncoder().encode(secret));
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
const body = JSON.stringify({ retention_days: 30, sampling_strategy: "errors_only" });
const gateway = `http://127.0.0.1:${port}/retention/policy`;

try {
  // Warm-up: JIT, connection pools, first PGlite pages.
  await load({ url: `http://127.0.0.1:${baselinePort}/`, connections, duration: 2 });
  await load({ url: gateway, method: "POST", headers: auth, body, connections, duration: 2 });
  const base = await load({ url: `http://127.0.0.1:${baselinePort}/`, connections, duration });
  const read = await load({ url: gateway, headers: auth, connections, duration });
  const write = await load({ url: gateway, method: "POST", headers: auth, body, connections, duration });
  console.log(`\ncommand: pnpm bench gateway --duration ${duration} --connections ${connections}${values.postgres ? " --postgres <url>" : ""}`);
  console.log(`database: ${values.postgres ? "PostgreSQL" : "embedded PGlite"}, node ${process.version}, ${connections} connections, ${duration} s per run\n`);
  console.log("| run | req/s | p50 ms | p99 ms | throughput vs baseline | added p50 ms | added p99 ms |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(row("baseline: bare node:http, same JSON", base));
  console.log(row("GET /retention/policy via gateway", read, base));
  console.log(row("POST /retention/policy via gateway", write, base));
} finally {
  await system.stop();
  await baseline.stop();
  await rm(dataDir, { recursive: true, force: true });
}
