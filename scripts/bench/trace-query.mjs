// `pnpm bench trace-query [--postgres ADMIN_URL] [--traces N] [--duration S] [--connections C]
//                         [--tenant T] [--only REGEX] [--keep] [--reuse] [--database NAME] [--cpu-prof DIR]
//                         [--compare ROOT]`
// What listing traces costs at scale: N traces (default 1,000,000) over four tenants are generated
// with SQL into a database of their own (clasper_bench_traces unless --database names another,
// created and dropped through the admin URL), then GET /traces is measured through the
// one-process system (`clasper serve` as a child: JWT check, signed internal context, Connect call
// with the full interceptor stack, keyset page with annotations and capped count in one
// statement, JSON rendering) for the filters and combinations users send, as p50/p95/p99 latency
// and requests/s at a fixed concurrency, plus the CPU each request cost the server process and
// the PostgreSQL backends. The baseline, in the same run and with the same concurrency, sends the
// very statement the service builds (taken from the trace store, prepared the same way) straight
// to PostgreSQL with `pg`, so the ratio is the API's own overhead. Measured for the largest
// tenant (60% of the traces) unless --tenant names another (bench-d holds 5%). --keep leaves the
// generated database behind and --reuse measures a kept one (the server still migrates it, so
// new indexes get built) instead of generating it again. --compare ROOT also serves the same
// database from another built checkout (e.g. the commit before a change) and measures both in
// alternating rounds, one request at a time: on a machine shared with other work, CPU per request
// of two builds is only comparable when measured side by side.
import { parseArgs } from "node:util";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { SignJWT } from "jose";
import pg from "pg";
import { cpuSeconds, freePort, startChild } from "./_support.mjs";

const { values } = parseArgs({
  options: {
    postgres: { type: "string", default: "postgres://clasper:clasper@127.0.0.1:5432/clasper_test" },
    traces: { type: "string", default: "1000000" },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "8" },
    // Keep the generated database afterwards / reuse a kept one instead of generating again.
    keep: { type: "boolean", default: false },
    reuse: { type: "boolean", default: false },
    tenant: { type: "string", default: "bench-a" },
    // Another name keeps a second kept database apart (A/B runs of two builds).
    database: { type: "string", default: "clasper_bench_traces" },
    only: { type: "string" },
    // Writes a V8 CPU profile of the server process to DIR (open it in Chrome DevTools).
    "cpu-prof": { type: "string" },
    // Root of another built checkout to measure side by side with this one.
    compare: { type: "string" },
  },
});
const total = Number(values.traces);
const duration = Number(values.duration);
let connections = Number(values.connections);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const secret = "bench-secret-that-is-long-enough-0123456789abcdef";
const database = values.database;
const tenant = values.tenant;
const BASELINE_APP = "trace-query-baseline";
/** Window the generated traces span, ending now. */
const SPAN_DAYS = 30;

const adminUrl = values.postgres;
const benchUrl = (() => {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();

async function admin(sql) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Tenants: bench-a 60%, bench-b 25%, bench-c 10%, bench-d 5%; started_at spread evenly over the
 * last SPAN_DAYS; 20 workspaces; 1 in 17 traces errors, 1 in 101 blocked; agent roles support and
 * sales, and a rare one (1 in 89); 3 models, and a rare one (1 in 97); labels env
 * (prod/staging/dev) and team; every 10th trace linked to a task.
 */
async function seed(client) {
  const chunk = 250_000;
  const step = (SPAN_DAYS * 86_400) / total;
  for (let from = 1; from <= total; from += chunk) {
    const to = Math.min(total, from + chunk - 1);
    const started = performance.now();
    await client.query(
      `insert into trace.traces (tenant_id, trace_id, started_at, completed_at, duration_ms, status, execution_id, workspace_id,
         environment, agent_role, user_id, model, provider, workspace_version_hash, skill_versions, input_tokens, output_tokens,
         cost_micros, llm_call_count, tool_call_count, span_count, error_code, labels, task_id, risk_score, risk_level, source)
       select case when i % 20 < 12 then 'bench-a' when i % 20 < 17 then 'bench-b' when i % 20 < 19 then 'bench-c' else 'bench-d' end,
         md5(i::text),
         now() - make_interval(secs => i * $3::float8),
         now() - make_interval(secs => i * $3::float8) + make_interval(secs => (i % 30)),
         (i % 30) * 1000,
         case when i % 17 = 0 then 3 when i % 101 = 0 then 4 else 2 end,
         'exec-' || i, 'ws-' || (i % 20), 'prod', case when i % 89 = 0 then 'auditor' when i % 2 = 0 then 'support' else 'sales' end, 'user-' || (i % 1000),
         case when i % 97 = 0 then 'o3' else (array['gpt-4o', 'gpt-4o-mini', 'claude-sonnet'])[1 + i % 3] end, 'openai', 'abcdef0123456789',
         '{"search": "1.0.0"}'::jsonb, 500 + i % 1000, 50 + i % 200, (i % 5000) * 10, 2, i % 4, 6,
         case when i % 17 = 0 then 'provider_error' end,
         jsonb_build_object('env', (array['prod', 'staging', 'dev'])[1 + i % 3], 'team', 't' || (i % 7)),
         case when i % 10 = 0 then 'task-' || (i % 5000) end, i % 100, 1 + i % 4, 'send'
       from generate_series($1::int, $2::int) as i`,
      [from, to, step],
    );
    process.stderr.write(`seeded ${to.toLocaleString("en")} / ${total.toLocaleString("en")} traces (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
  }
  await client.query("vacuum analyze trace.traces");
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `connections` concurrent loops calling `once` for `seconds`; latency percentiles in ms. */
async function measure(once, seconds) {
  const latencies = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await once();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), n: latencies.length };
}

/** CPU seconds so far of the bench database's backends serving the API (`baseline` false) or the baseline pool. */
async function backendCpu(monitor, baseline) {
  const { rows } = await monitor.query("select pid from pg_stat_activity where datname = $1 and backend_type = 'client backend' and pid <> pg_backend_pid() and (application_name = $2) = $3", [
    database,
    BASELINE_APP,
    baseline,
  ]);
  return new Map(rows.map((r) => [r.pid, cpuSeconds(r.pid) ?? 0]));
}

/** `measure`, plus CPU ms per request of the server process (when given) and of the PostgreSQL backends. */
async function measureWithCpu(once, seconds, { monitor, baseline, serverPid }) {
  const serverBefore = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  const dbBefore = await backendCpu(monitor, baseline);
  const figures = await measure(once, seconds);
  const dbAfter = await backendCpu(monitor, baseline);
  const serverAfter = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  let dbSeconds = 0;
  for (const [pid, after] of dbAfter) dbSeconds += after - (dbBefore.get(pid) ?? 0);
  return {
    ...figures,
    serverCpuMs: serverBefore === undefined || serverAfter === undefined ? undefined : ((serverAfter - serverBefore) * 1000) / figures.n,
    dbCpuMs: (dbSeconds * 1000) / figures.n,
  };
}

const day = (n) => new Date(Date.now() - n * 86_400_000);
const windowStart = day(8);
const windowEnd = day(7);
const since20 = day(20);
/** A workspace of the measured tenant (see seed: workspace = i % 20, tenant by the same residue). */
const workspace = { "bench-a": "ws-3", "bench-b": "ws-13", "bench-c": "ws-17", "bench-d": "ws-19" }[tenant] ?? "ws-3";
const ERROR = 3; // TraceStatus.ERROR

/**
 * Each scenario: the REST query string and the same filter as the trace store's TraceFilter (the
 * baseline builds its statement from it; the first answers of both are compared). `cursor`: the
 * second page, following next_cursor of the first.
 */
const scenarios = [
  { name: "no filter", query: "", filter: {} },
  { name: "no filter, limit=1 (fixed cost)", query: "limit=1", filter: {}, limit: 1 },
  { name: "workspace_id", query: `workspace_id=${workspace}`, filter: { workspaceId: workspace } },
  { name: "status=error", query: "status=error", filter: { status: ERROR } },
  { name: "1-day time range", query: `start_time=${windowStart.toISOString()}&end_time=${windowEnd.toISOString()}`, filter: { startTime: windowStart, endTime: windowEnd } },
  { name: "agent_role (50%)", query: "agent_role=support", filter: { agentRole: "support" } },
  { name: "agent_role (rare, 1%)", query: "agent_role=auditor", filter: { agentRole: "auditor" } },
  { name: "model (33%)", query: "model=gpt-4o", filter: { model: "gpt-4o" } },
  { name: "model (rare, 1%)", query: "model=o3", filter: { model: "o3" } },
  { name: "label env=prod", query: "label_key=env&label_value=prod", filter: { labelKey: "env", labelValue: "prod" } },
  { name: "label key team", query: "label_key=team", filter: { labelKey: "team" } },
  { name: "workspace+status", query: `workspace_id=${workspace}&status=error`, filter: { workspaceId: workspace, status: ERROR } },
  { name: "workspace+status, page 2 (cursor)", query: `workspace_id=${workspace}&status=error`, filter: { workspaceId: workspace, status: ERROR }, cursor: true },
  { name: "workspace+1-day range", query: `workspace_id=${workspace}&start_time=${windowStart.toISOString()}&end_time=${windowEnd.toISOString()}`, filter: { workspaceId: workspace, startTime: windowStart, endTime: windowEnd } },
  { name: "status+1-day range", query: `status=error&start_time=${windowStart.toISOString()}&end_time=${windowEnd.toISOString()}`, filter: { status: ERROR, startTime: windowStart, endTime: windowEnd } },
  { name: "status+workspace+range (20 days)", query: `status=error&workspace_id=${workspace}&start_time=${since20.toISOString()}`, filter: { status: ERROR, workspaceId: workspace, startTime: since20 } },
].filter((s) => values.only === undefined || new RegExp(values.only).test(s.name));

// The trace store itself builds the baseline's statement, through the kysely the service uses.
const kysely = await import(path.join(root, "services/trace/node_modules/kysely/dist/esm/index.js"));
const store = await import(path.join(root, "services/trace/dist/src/store/traces.js"));
const cursors = await import(path.join(root, "services/trace/dist/src/query/cursor.js"));

/** The statement listTraces sends for `scenario` (compiled, not run), as a pg named statement. */
async function statementOf(scenario, index, after) {
  let compiled;
  const capture = new kysely.Kysely({
    dialect: {
      createAdapter: () => new kysely.PostgresAdapter(),
      createDriver: () => ({
        init: async () => {},
        acquireConnection: async () => ({
          executeQuery: async (query) => {
            compiled = query;
            return { rows: [] };
          },
          streamQuery: () => {
            throw new Error("not used");
          },
        }),
        beginTransaction: async () => {},
        commitTransaction: async () => {},
        rollbackTransaction: async () => {},
        releaseConnection: async () => {},
        destroy: async () => {},
      }),
      createIntrospector: (db) => new kysely.PostgresIntrospector(db),
      createQueryCompiler: () => new kysely.PostgresQueryCompiler(),
    },
  }).withSchema("trace");
  await store.listTraces(capture, { tenantId: tenant }, scenario.filter, { limit: scenario.limit ?? 50, offset: 0, after }, { withTotal: true });
  return { name: `trace_query_bench_${index}`, text: compiled.sql, values: [...compiled.parameters] };
}

const fmt = (n) => (n === undefined ? "n/a" : n.toFixed(2));

/** Seeds unless --reuse finds a database seeded with the same number of traces. */
async function prepareDatabase() {
  if (values.reuse) {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    const exists = (await client.query("select 1 from pg_database where datname = $1", [database])).rowCount === 1;
    await client.end();
    if (exists) return false;
    process.stderr.write(`--reuse: no ${database} yet, generating it\n`);
  }
  await admin(`drop database if exists ${database} with (force)`);
  await admin(`create database ${database}`);
  return true;
}

/** `clasper serve` of the checkout at `checkout` on the bench database; `profile`: extra node flags. */
async function serve(checkout, port, dataDir, profile = []) {
  return startChild(process.execPath, [...profile, path.join(checkout, "packages/cli/dist/bin.js"), "serve"], {
    env: { CLASPER_PORT: String(port), CLASPER_HOST: "127.0.0.1", CLASPER_DATA_DIR: dataDir, CLASPER_AUTH_JWT_SECRET: secret, LOG_LEVEL: "warn", NODE_ENV: "production", DATABASE_URL: benchUrl },
    url: `http://127.0.0.1:${port}/healthz`,
    timeoutMs: 600_000,
  });
}

/**
 * Server CPU ms per request of `calls` (one per server), measured in alternating rounds of
 * `seconds` each after one unmeasured round (both servers equally warm for this filter).
 */
async function sideBySide(calls, seconds, rounds = 3) {
  const totals = calls.map(() => ({ cpu: 0, n: 0 }));
  const saved = connections;
  connections = 1;
  try {
    for (const { once } of calls) await measure(once, seconds);
    for (let round = 0; round < rounds; round++) {
      for (const [i, { once, pid }] of calls.entries()) {
        const before = cpuSeconds(pid);
        const { n } = await measure(once, seconds);
        totals[i].cpu += cpuSeconds(pid) - before;
        totals[i].n += n;
      }
    }
  } finally {
    connections = saved;
  }
  return totals.map(({ cpu, n }) => (cpu * 1000) / n);
}

const mustSeed = await prepareDatabase();
const port = await freePort();
const dataDir = await mkdtemp(path.join(tmpdir(), "clasper-bench-"));
let system;
let compared;
const pool = new pg.Pool({ connectionString: benchUrl, max: 20, application_name: BASELINE_APP });
const monitor = new pg.Client({ connectionString: benchUrl, application_name: "trace-query-monitor" });
try {
  // The server migrates the empty (or kept) database on start; the traces are generated afterwards.
  const profile = values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : [];
  system = await serve(root, port, dataDir, profile);
  await monitor.connect();
  const seedStarted = performance.now();
  if (mustSeed) {
    await seed(monitor);
  } else {
    const kept = (await monitor.query("select count(*)::int as n from trace.traces")).rows[0].n;
    if (kept !== total) throw new Error(`--reuse: ${database} holds ${kept} traces, not ${total}; run without --reuse`);
  }
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  const tenantRows = (await monitor.query("select count(*)::int as n from trace.traces where tenant_id = $1", [tenant])).rows[0].n;
  const load = (await readFile("/proc/loadavg", "utf8").catch(() => "n/a")).split(" ").slice(0, 3).join(" ");
  if (values.compare) compared = { port: await freePort(), dataDir: await mkdtemp(path.join(tmpdir(), "clasper-bench-")) };
  if (compared) compared.system = await serve(path.resolve(values.compare), compared.port, compared.dataDir);

  const token = await new SignJWT({ tenant_id: tenant, user_id: "bench", roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("2h").sign(new TextEncoder().encode(secret));
  const headers = { authorization: `Bearer ${token}` };
  const get = async (query, at = port) => {
    const res = await fetch(`http://127.0.0.1:${at}/traces${query ? `?${query}` : ""}`, { headers });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`GET /traces?${query}: HTTP ${res.status} ${body.slice(0, 200)}`);
    return body;
  };

  const results = [];
  for (const [index, scenario] of scenarios.entries()) {
    let query = scenario.query;
    let after;
    if (scenario.cursor) {
      const next = JSON.parse(await get(query)).next_cursor;
      if (!next) throw new Error(`${scenario.name}: the first page has no next_cursor`);
      query = `${query}&cursor=${next}`;
      after = cursors.decodeCursor(next);
    }
    const statement = await statementOf(scenario, index, after);
    // The baseline must answer what the API answers: the same page and the same capped total.
    const apiFirstText = await get(query);
    const apiFirst = JSON.parse(apiFirstText);
    const sqlFirst = await pool.query(statement);
    const sqlIds = sqlFirst.rows.slice(0, scenario.limit ?? 50).map((r) => r.trace_id);
    if (JSON.stringify((apiFirst.traces ?? []).map((t) => t.trace_id)) !== JSON.stringify(sqlIds) || Number(apiFirst.total ?? 0) !== Number(sqlFirst.rows[0]?.total_capped ?? apiFirst.total ?? 0)) {
      throw new Error(`${scenario.name}: the baseline statement does not answer what GET /traces answers`);
    }
    const apiCall = async () => {
      await get(query);
    };
    const baselineCall = async () => {
      await pool.query(statement);
    };
    // Warm-up: JIT, pool connections, prepared statements, the index pages this filter reads.
    await measure(apiCall, 1);
    await measure(baselineCall, 1);
    const base = await measureWithCpu(baselineCall, duration, { monitor, baseline: true });
    const api = await measureWithCpu(apiCall, duration, { monitor, baseline: false, serverPid: system.child.pid });
    let side;
    if (compared) {
      if ((await get(query, compared.port)) !== apiFirstText) throw new Error(`${scenario.name}: --compare answers differently`);
      const compareCall = async () => {
        await get(query, compared.port);
      };
      side = await sideBySide([{ once: apiCall, pid: system.child.pid }, { once: compareCall, pid: compared.system.child.pid }], duration / 4);
    }
    results.push({ scenario, base, api, side, total: apiFirst.total ?? 0 });
  }

  console.log(`\ncommand: pnpm bench trace-query --traces ${total} --duration ${duration} --connections ${connections}${tenant === "bench-a" ? "" : ` --tenant ${tenant}`}${values.only ? ` --only '${values.only}'` : ""}${values.reuse ? " --reuse" : ""}${database === "clasper_bench_traces" ? "" : ` --database ${database}`}${values.compare ? ` --compare ${values.compare}` : ""}`);
  console.log(
    `PostgreSQL (${database}), node ${process.version}, ${total.toLocaleString("en")} traces ${mustSeed ? `seeded in ${seedSeconds.toFixed(0)} s` : "reused"}, ` +
      `tenant ${tenant} holds ${tenantRows.toLocaleString("en")}; page size 50 unless shown; ${connections} concurrent requests, ${duration} s per run; load average ${load}\n`,
  );
  console.log("| GET /traces filter | total | API req/s | API p50 ms | API p95 ms | API p99 ms | server CPU ms/req | DB CPU ms/req | SQL-only p50 ms | SQL-only p95 ms | SQL-only DB CPU ms/req | API/SQL p95 |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const { scenario, base, api, total: matches } of results) {
    console.log(
      `| ${scenario.name} | ${matches} | ${api.rps.toFixed(0)} | ${fmt(api.p50)} | ${fmt(api.p95)} | ${fmt(api.p99)} | ${fmt(api.serverCpuMs)} | ${fmt(api.dbCpuMs)} | ${fmt(base.p50)} | ${fmt(base.p95)} | ${fmt(base.dbCpuMs)} | ${(api.p95 / base.p95).toFixed(2)}× |`,
    );
  }
  if (compared) {
    console.log(`\nSide by side with --compare ${values.compare} (alternating rounds, one request at a time; server CPU ms per request):\n`);
    console.log("| GET /traces filter | this build | --compare build | this / compare |");
    console.log("|---|---|---|---|");
    for (const { scenario, side } of results) console.log(`| ${scenario.name} | ${fmt(side[0])} | ${fmt(side[1])} | ${(side[0] / side[1]).toFixed(2)}× |`);
  }
  const worst = Math.max(...results.map((r) => r.api.p95));
  console.log(`\nworst API p95: ${fmt(worst)} ms (target ≤ 50 ms): ${worst <= 50 ? "met" : "NOT met"}`);
} finally {
  await monitor.end().catch(() => {});
  await pool.end();
  if (system) await system.stop();
  if (compared?.system) await compared.system.stop();
  await rm(dataDir, { recursive: true, force: true });
  if (compared) await rm(compared.dataDir, { recursive: true, force: true });
  if (!values.keep) await admin(`drop database if exists ${database} with (force)`);
}
