// `pnpm bench gateway [--duration S] [--connections N] [--postgres URL] [--cpu-prof-dir DIR]`
// What the REST edge costs: GET and POST /retention/policy through the one-process system
// (JWT verification, request binding, signed internal context, in-memory Connect call with the full
// interceptor stack, a database round trip, JSON rendering) against a baseline bare Node HTTP
// server answering the same JSON, measured in the same run with the same load generator.
import { parseArgs } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { SignJWT } from "jose";
import { freePort, load, row, startChild } from "./_support.mjs";

/**
 * CPU seconds (user + system) a child process has used so far, from /proc (Linux). Throughput on
 * a shared, noisy machine swings with its neighbours; CPU per request does not, so A/B
 * comparisons read this column. Undefined elsewhere.
 */
const clockTicks = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

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
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
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
