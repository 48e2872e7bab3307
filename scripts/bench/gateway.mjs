// `pnpm bench gateway [--duration S] [--connections N] [--postgres URL] [--cpu-prof-dir DIR] [--hop-calls N]`
// What the REST edge costs: GET and POST /retention/policy through the one-process system
// (JWT verification, request binding, signed internal context, in-memory Connect call with the full
// interceptor stack, a database round trip, JSON rendering) against a baseline bare Node HTTP
// server answering the same JSON, measured in the same run with the same load generator.
// Then, in this process, the CPU of one in-process hop with the real stacks and no database.
import { parseArgs } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { SignJWT } from "jose";
import { cpuSeconds, freePort, load, row, startChild } from "./_support.mjs";

/** One load run, plus the server's CPU µs per answered request over the run. */
async function measured(pid, options) {
  const before = cpuSeconds(pid);
  const figures = await load(options);
  const after = cpuSeconds(pid);
  return { ...figures, cpuUs: before === undefined || after === undefined ? undefined : ((after - before) * 1e6) / figures.total };
}

const cpuCell = (figures) => (figures.cpuUs === undefined ? "n/a" : figures.cpuUs.toFixed(0));

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    postgres: { type: "string" },
    /** Directory for a V8 CPU profile of the system process (written when it stops). */
    "cpu-prof-dir": { type: "string" },
    /** Calls per round of the in-process hop measurement (0 skips it). */
    "hop-calls": { type: "string", default: "8000" },
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
const profileArgs = values["cpu-prof-dir"] ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(values["cpu-prof-dir"])}`] : [];
const system = await startChild(process.execPath, [...profileArgs, path.join(root, "packages/cli/dist/bin.js"), "serve"], {
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
const bearer = `Bearer ${token}`;
const auth = { authorization: bearer, "content-type": "application/json" };
const body = JSON.stringify({ retention_days: 30, sampling_strategy: "errors_only" });
const gateway = `http://127.0.0.1:${port}/retention/policy`;

try {
  // Warm-up: JIT, connection pools, first PGlite pages.
  await load({ url: `http://127.0.0.1:${baselinePort}/`, connections, duration: 2 });
  await load({ url: gateway, method: "POST", headers: auth, body, connections, duration: 2 });
  const loadBefore = loadavg()[0];
  const base = await measured(baseline.child.pid, { url: `http://127.0.0.1:${baselinePort}/`, connections, duration });
  const read = await measured(system.child.pid, { url: gateway, headers: auth, connections, duration });
  const write = await measured(system.child.pid, { url: gateway, method: "POST", headers: auth, body, connections, duration });
  console.log(`\ncommand: pnpm bench gateway --duration ${duration} --connections ${connections}${values.postgres ? " --postgres <url>" : ""}`);
  console.log(`database: ${values.postgres ? "PostgreSQL" : "embedded PGlite"}, node ${process.version}, ${connections} connections, ${duration} s per run`);
  console.log(`load average (1 min) before / after: ${loadBefore.toFixed(2)} / ${loadavg()[0].toFixed(2)}\n`);
  console.log("| run | req/s | p50 ms | p99 ms | throughput vs baseline | added p50 ms | added p99 ms | server CPU µs/req |");
  console.log("|---|---|---|---|---|---|---|---|");
  console.log(`${row("baseline: bare node:http, same JSON", base)} ${cpuCell(base)} |`);
  console.log(`${row("GET /retention/policy via gateway", read, base)} ${cpuCell(read)} |`);
  console.log(`${row("POST /retention/policy via gateway", write, base)} ${cpuCell(write)} |`);
} finally {
  await system.stop();
  await baseline.stop();
  await rm(dataDir, { recursive: true, force: true });
}

if (Number(values["hop-calls"]) > 0) await inProcessHops(Number(values["hop-calls"]));

/**
 * One hop in this process: the direct transport with the real server and client stacks
 * (serverInterceptors/clientInterceptors: tracing, logging, metrics, auth, store errors,
 * validation) and a handler that answers at once, 32 calls in flight; CPU µs per call from
 * process.cpuUsage, three rounds of each kind, interleaved.
 */
async function inProcessHops(calls) {
  const load = (rel) => import(pathToFileURL(path.join(root, rel)).href);
  const auth = await load("packages/auth/dist/index.js");
  const telemetryKit = await load("packages/telemetry/dist/index.js");
  const kit = await load("packages/service-kit/dist/index.js");
  const { TraceService } = await load("packages/proto/dist/index.js");
  const internal = "bench-internal-secret-0123456789-abcdefghij";
  const signer = auth.createContextSigner(internal);
  const telemetry = telemetryKit.startTelemetry({ serviceName: "bench", env: {} });
  telemetry.addSpanProcessor({ onStart() {}, onEnd() {}, forceFlush: async () => {}, shutdown: async () => {} });
  const logger = telemetryKit.createLogger({ serviceName: "bench", level: "warn" });
  const metrics = telemetryKit.createMetrics({ serviceName: "bench" });
  const transport = kit.inMemoryTransport({
    routes: (router) => router.service(TraceService, { getRetentionPolicy: () => ({ policy: { retentionDays: 7 } }) }),
    health: kit.createHealthRegistry(["bench"], async () => {}),
    serverInterceptors: kit.serverInterceptors({ telemetry, logger, metrics, contextVerifier: auth.createContextVerifier(internal), contextSigner: signer }),
    clientInterceptors: kit.clientInterceptors({ telemetry, forwardContext: true }),
  });
  const client = kit.createPeerClients(() => transport).trace;
  const callers = auth.createCallerVerifier({ hsSecret: secret });
  const principal = auth.buildPrincipal({ kind: "user", tenantId: "bench", userId: "bench", roles: ["admin"] });
  const once = await signer.sign({ principal, requestId: "signed-once" });
  let n = 0;
  const kinds = {
    "transport and both stacks, context signed once": () => client.getRetentionPolicy({}, { headers: { "x-clasper-context": once } }),
    "the same, context signed per call": async () =>
      client.getRetentionPolicy({}, { headers: { "x-clasper-context": await signer.sign({ principal, requestId: `r${n++}` }) } }),
    "plus caller JWT verification, abort signal and timeout (the gateway's part)": async () => {
      const caller = await callers.verify(bearer);
      const token = await signer.sign({ principal: caller, requestId: `r${n++}` });
      return client.getRetentionPolicy({}, { headers: { "x-clasper-context": token }, signal: new AbortController().signal, timeoutMs: 30_000 });
    },
  };
  const round = async (call) => {
    const start = process.cpuUsage();
    let left = calls;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (left-- > 0) await call();
    }));
    const used = process.cpuUsage(start);
    return (used.user + used.system) / calls;
  };
  const results = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
  for (const call of Object.values(kinds)) await round(call); // warm-up
  for (let r = 0; r < 3; r++) for (const [kind, call] of Object.entries(kinds)) results[kind].push(await round(call));
  await telemetry.shutdown();
  console.log(`\nin-process hop, ${calls} calls per round, 32 in flight, load average ${loadavg()[0].toFixed(2)}\n`);
  console.log("| hop | CPU µs per call (three rounds) |");
  console.log("|---|---|");
  for (const [kind, figures] of Object.entries(results)) console.log(`| ${kind} | ${figures.map((f) => f.toFixed(0)).join(", ")} |`);
}
