// In-process A/B of the gateway path: two systems in one process (router vs direct transport,
// full context verify vs signer record), driven through gateway.handler with fake req/res.
import { EventEmitter } from "node:events";
import { SignJWT } from "jose";
import { parseConfig } from "@clasper/core";
import { createContextSigner, createContextVerifier } from "@clasper/auth";
import { createDatabase } from "@clasper/db";
import { configureCallerAuth, createGateway, CLASPER_VERSION, gatewayConfigShape } from "@clasper/gateway";
import { createLogger, createMetrics, startTelemetry } from "@clasper/telemetry";
import { clientInterceptors, createHealthRegistry, createPeerClients, inMemoryTransport, inMemoryRouterTransport, lateBoundTransport, serverInterceptors, SERVICE_DESCRIPTORS, SERVICE_NAMES } from "@clasper/service-kit";
import { SERVICE_MODULES } from "/work/main/packages/cli/dist/modules.js";
import { migrateAll } from "/work/main/packages/cli/dist/serve-all.js";

const secret = "bench-secret-that-is-long-enough-0123456789abcdef";
const env = { CLASPER_AUTH_JWT_SECRET: secret, LOG_LEVEL: process.env.LL ?? "warn", NODE_ENV: "production", DATABASE_URL: process.env.PG, CLASPER_DATA_DIR: "/tmp/inproc-data" };
const config = parseConfig(gatewayConfigShape, env);
const telemetry = startTelemetry({ serviceName: "clasper", env });
const logger = createLogger({ serviceName: "clasper", level: config.LOG_LEVEL, destination: { write() {} } });
const metrics = createMetrics({ serviceName: "clasper" });
const auth = await configureCallerAuth(config);
const database = await createDatabase({ url: config.DATABASE_URL, dataDir: `${config.CLASPER_DATA_DIR}/pgdata`, poolMax: config.CLASPER_DB_POOL_MAX });
await migrateAll(database);

function system(direct, trustOwn) {
  const contextSigner = createContextSigner(secret);
  const inbound = serverInterceptors({ telemetry, logger, metrics, contextVerifier: createContextVerifier(secret), contextSigner: trustOwn ? contextSigner : createContextSigner(secret) });
  const transports = {};
  const peers = createPeerClients((name) => lateBoundTransport(() => transports[name]));
  for (const name of SERVICE_NAMES) {
    const module = SERVICE_MODULES[name];
    const routes = module.build({ db: module.schema ? database : undefined, peers, logger, env });
    transports[name] = (direct ? inMemoryTransport : inMemoryRouterTransport)({
      routes, health: createHealthRegistry([name, SERVICE_DESCRIPTORS[name].typeName], async () => {}),
      serverInterceptors: inbound, clientInterceptors: clientInterceptors({ telemetry, forwardContext: true }),
    });
  }
  return createGateway({ transports, callerVerifier: auth.verifier, contextSigner, logger, metrics, telemetry, maxBodyBytes: config.CLASPER_MAX_BODY_BYTES, requestTimeoutMs: config.CLASPER_REQUEST_TIMEOUT_MS, version: CLASPER_VERSION });
}

const token = await new SignJWT({ tenant_id: "bench", user_id: "bench", roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode(secret));

function call(gateway) {
  return new Promise((resolve, reject) => {
    const req = { url: process.env.URLPATH ?? "/retention/policy", method: "GET", headers: { authorization: `Bearer ${token}` } };
    const res = new EventEmitter();
    const headers = {};
    Object.assign(res, {
      headersSent: false, writableFinished: false, statusCode: 200,
      setHeader(k, v) { headers[k] = v; },
      writeHead(status) { this.statusCode = status; this.headersSent = true; },
      end() { this.writableFinished = true; if (this.statusCode !== 200) reject(new Error(`status ${this.statusCode}`)); else resolve(); this.emit("close"); },
    });
    gateway.handler(req, res);
  });
}

async function round(gateway, n, concurrency = 32) {
  let next = 0;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next++ < n) await call(gateway); }));
  const c = process.cpuUsage(c0);
  return { cpuUs: (c.user + c.system) / n, rps: n / ((performance.now() - t0) / 1000) };
}

const modes = { router_verify: system(false, false), router_trust: system(false, true), direct_verify: system(false === true, false) && system(true, false), direct_trust: system(true, true) };
const n = Number(process.env.N ?? 3000);
for (const g of Object.values(modes)) await round(g, 500);
const results = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
for (let r = 0; r < Number(process.env.ROUNDS ?? 4); r++) {
  for (const [name, g] of Object.entries(modes)) results[name].push(await round(g, n));
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, rs] of Object.entries(results)) console.log(name.padEnd(14), "cpu µs/req median", median(rs.map((r) => r.cpuUs)).toFixed(0), "all", rs.map((r) => r.cpuUs.toFixed(0)).join(","), "rps", median(rs.map((r) => r.rps)).toFixed(0));
await telemetry.shutdown();
await database.close();
