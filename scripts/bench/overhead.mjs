// `pnpm bench overhead [--duration S] [--connections N] [--rate R] [--postgres URL | --pglite] [--cpu-prof-dir DIR]`
// What Clasper adds to an LLM call: the stub provider (OpenAI Chat Completions, streamed) at 0 ms
// and 50 ms latency, loaded directly and through Clasper's gateway (`POST /api/agents/send`: auth,
// workspace, prompt, governance preflight + reservation + settlement, the streamed model call
// through pi-ai, the reply posted to mission-control-lite, audit entries, spans delivered to the
// trace service), one process, at a fixed rate (default 1,000 requests/s) and at saturation.
// Prints requests/s and p50/p99 of both, the latency Clasper adds, and the CPU the `clasper serve`
// process spent per request (user + system, from /proc; the figure to compare builds by on a
// shared machine, where wall-clock swings with the neighbours).
import { parseArgs } from "node:util";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { spawn } from "node:child_process";
import path from "node:path";
import autocannon from "autocannon";
import pg from "pg";
import { SignJWT } from "jose";
import { cpuSeconds, freePort, startChild } from "./_support.mjs";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    rate: { type: "string", default: "1000" },
    postgres: { type: "string" },
    pglite: { type: "boolean", default: false },
    "cpu-prof-dir": { type: "string" },
  },
});
const duration = Number(values.duration);
// The issue's setting is PostgreSQL: the local server (or --postgres URL) unless --pglite, each
// system on a database of its own created for the run and dropped after; PGlite only when asked
// for or when no server answers (said in the output).
const serverUrl = values.pglite ? undefined : (values.postgres ?? process.env.TEST_DATABASE_URL ?? "postgres://clasper:clasper@127.0.0.1:5432/clasper_test");
let admin;
if (serverUrl) {
  admin = new pg.Client({ connectionString: serverUrl });
  try {
    await admin.connect();
  } catch (err) {
    if (values.postgres) throw err;
    console.log(`PostgreSQL is not reachable at ${serverUrl} (${err.code ?? err.message}): running on embedded PGlite.`);
    admin = undefined;
  }
}
const benchDatabases = [];
/** A fresh PostgreSQL database for one system under test; its URL. */
async function freshDatabaseUrl(label) {
  const name = `clasper_bench_overhead_${process.pid}_${label}`;
  await admin.query(`create database ${name}`);
  benchDatabases.push(name);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

const connections = Number(values.connections);
const rate = Number(values.rate);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const callerSecret = "bench-secret-that-is-long-enough-0123456789abcdef";
const agentSecret = "bench-agent-secret-that-is-long-enough-0123456789";

/** One autocannon run; `overallRate` fixes the offered load, otherwise it saturates. */
async function run({ url, headers, body, overallRate }) {
  const result = await autocannon({ url, method: "POST", headers, body, connections, duration, pipelining: 1, ...(overallRate ? { overallRate } : {}) });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors, ${result.timeouts} timeouts`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, total: result.requests.total };
}

/** A run through Clasper, with the CPU its process spent per answered request. */
async function runMeasured(pid, options) {
  const before = cpuSeconds(pid);
  const figures = await run(options);
  const after = cpuSeconds(pid);
  return { ...figures, cpuMs: before === undefined || after === undefined ? undefined : ((after - before) * 1000) / figures.total };
}

const fmt = (f, base) =>
  `| ${f.rps.toFixed(0)} | ${f.p50.toFixed(2)} | ${f.p99.toFixed(2)} | ${base ? (f.p50 - base.p50).toFixed(2) : "—"} | ${base ? (f.p99 - base.p99).toFixed(2) : "—"} | ${f.cpuMs === undefined ? "—" : f.cpuMs.toFixed(2)} |`;

const stubScript = (port, latency) =>
  `import(${JSON.stringify(path.join(root, "packages/testkit/dist/index.js"))}).then(async (m) => { const s = await m.startStubProvider({ port: ${port}, defaultLatencyMs: ${latency} }); s.setResponder(() => ({ text: "ok, noted.", usage: { input: 200, output: 5 } })); setInterval(() => { s.requests.length = 0; }, 1000); });`;

/** The stub answers only its protocol routes, so readiness is "answers at all". */
async function startStub(port, latency) {
  const child = spawn(process.execPath, ["--input-type=module", "-e", stubScript(port, latency)], { stdio: ["ignore", "ignore", "inherit"] });
  for (let i = 0; ; i += 1) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      break;
    } catch {
      if (i > 150 || child.exitCode !== null) throw new Error("the stub provider did not start");
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { child, stop: () => new Promise((resolve) => { child.once("exit", () => resolve()); child.kill("SIGTERM"); }) };
}

const workspace = await mkdtemp(path.join(tmpdir(), "clasper-bench-ws-"));
await mkdir(workspace, { recursive: true });
await writeFile(path.join(workspace, "SOUL.md"), "You are a terse assistant.\n");
const dataDir = await mkdtemp(path.join(tmpdir(), "clasper-bench-"));
const children = [];
const rows = [];

try {
  const litePort = await freePort();
  const lite = await startChild(process.execPath, [path.join(root, "packages/control-plane/dist/mission-control-lite-bin.js")], {
    env: { MC_LITE_PORT: String(litePort), AGENT_JWT_SECRET: agentSecret },
    url: `http://127.0.0.1:${litePort}/health`,
  });
  children.push(lite);
  // The thread the replies are posted to, created once as the bench user.
  const { createControlPlaneClient } = await import(path.join(root, "packages/control-plane/dist/index.js"));
  const { mintAgentToken } = await import(path.join(root, "packages/auth/dist/index.js"));
  const cp = createControlPlaneClient({ baseUrl: `http://127.0.0.1:${litePort}`, token: () => mintAgentToken({ secret: agentSecret, tenantId: "bench", userId: "bench", agentRole: "bench" }) });
  const task = await cp.createTask({ title: "bench" }, { idempotencyKey: "bench-thread" });

  for (const latency of [0, 50]) {
    const stubPort = await freePort();
    const stub = await startStub(stubPort, latency);
    children.push(stub);
    const port = await freePort();
    const profileArgs = values["cpu-prof-dir"] ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(values["cpu-prof-dir"])}`] : [];
    const system = await startChild(process.execPath, [...profileArgs, path.join(root, "packages/cli/dist/bin.js"), "serve"], {
      env: {
        CLASPER_PORT: String(port),
        CLASPER_HOST: "127.0.0.1",
        CLASPER_DATA_DIR: `${dataDir}/${latency}`,
        CLASPER_AUTH_JWT_SECRET: callerSecret,
        LOG_LEVEL: "warn",
        NODE_ENV: "production",
        LLM_PROVIDER: "openai",
        LLM_API: "openai-completions",
        LLM_MODEL_DEFAULT: "gpt-4o-mini",
        LLM_BASE_URL: `http://127.0.0.1:${stubPort}/v1`,
        BACKEND_URL: `http://127.0.0.1:${litePort}`,
        AGENT_JWT_SECRET: agentSecret,
        CLASPER_WORKSPACE: workspace,
        ...(admin ? { DATABASE_URL: await freshDatabaseUrl(`${latency}ms`) } : {}),
      },
      url: `http://127.0.0.1:${port}/healthz`,
    });
    children.push(system);
    const token = await new SignJWT({ tenant_id: "bench", user_id: "bench", roles: ["admin"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(callerSecret));
    const direct = {
      url: `http://127.0.0.1:${stubPort}/v1/chat/completions`,
      headers: { authorization: "Bearer not-needed", "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "system", content: "You are a terse assistant." }, { role: "user", content: "hello" }] }),
    };
    const via = {
      url: `http://127.0.0.1:${port}/api/agents/send`,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ user_id: "bench", session_key: "user:bench:bench", message: "hello", task_id: task.id }),
    };
    // Warm-up: JIT, pools, first database pages.
    await run({ ...direct, overallRate: 200 });
    await run({ ...via, overallRate: 200 });
    const d1 = await run({ ...direct, overallRate: rate });
    const c1 = await runMeasured(system.child.pid, { ...via, overallRate: rate });
    const dS = await run(direct);
    const cS = await runMeasured(system.child.pid, via);
    rows.push([`stub ${latency} ms, direct, ${rate}/s offered`, fmt(d1)], [`stub ${latency} ms, via Clasper, ${rate}/s offered`, fmt(c1, d1)]);
    rows.push([`stub ${latency} ms, direct, saturation`, fmt(dS)], [`stub ${latency} ms, via Clasper, saturation`, fmt(cS, dS)]);
    await system.stop();
    await stub.stop();
    children.splice(children.indexOf(system), 1);
    children.splice(children.indexOf(stub), 1);
  }
  console.log(`\ncommand: pnpm bench overhead --duration ${duration} --connections ${connections} --rate ${rate}${values.postgres ? " --postgres <url>" : values.pglite ? " --pglite" : ""}`);
  console.log(`database: ${admin ? `PostgreSQL (${(await admin.query("select version() as v")).rows[0].v.split(" on ")[0]}), a fresh database per system` : "embedded PGlite"}, node ${process.version}, load average ${loadavg()[0].toFixed(2)}\n`);
  console.log("| run | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU of clasper serve per request, ms |");
  console.log("|---|---|---|---|---|---|---|");
  for (const [label, cells] of rows) console.log(`| ${label} ${cells}`);
  console.log("\ntargets: added p50 ≤ 1 ms and p99 ≤ 5 ms at 1,000 requests/s; ≥ 2,000 requests/s at saturation");
} finally {
  for (const child of children.reverse()) await child.stop();
  await rm(dataDir, { recursive: true, force: true });
  await rm(workspace, { recursive: true, force: true });
  if (admin) {
    for (const name of benchDatabases) await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}
