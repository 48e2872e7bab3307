// `pnpm bench trace-query [--postgres ADMIN_URL] [--traces N] [--duration S] [--connections C]`
// What listing traces costs at scale: N traces (default 1,000,000) over four tenants are generated
// with SQL into a database of their own (clasper_bench_traces, created and dropped through the
// admin URL), then GET /traces is measured through the one-process system (`clasper serve` as a
// child: JWT check, signed internal context, Connect call with the full interceptor stack, keyset
// page with annotations and capped count in one statement, JSON rendering) for several filters, as p50/p95/p99
// latency and requests/s at a fixed concurrency. The baseline, in the same run and with the same
// concurrency, sends the same SQL statement per request straight to PostgreSQL with `pg`,
// so the ratio is the API's own overhead. Measured for the largest tenant (60% of the traces).
import { parseArgs } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { SignJWT } from "jose";
import pg from "pg";
import { freePort, startChild } from "./_support.mjs";

const { values } = parseArgs({
  options: {
    postgres: { type: "string", default: "postgres://clasper:clasper@127.0.0.1:5432/clasper_test" },
    traces: { type: "string", default: "1000000" },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "8" },
    // Keep the generated database afterwards / reuse a kept one instead of generating again.
    keep: { type: "boolean", default: false },
    reuse: { type: "boolean", default: false },
  },
});
const total = Number(values.traces);
const duration = Number(values.duration);
const connections = Number(values.connections);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const secret = "bench-secret-that-is-long-enough-0123456789abcdef";
const database = "clasper_bench_traces";
const tenant = "bench-a";
/** Window the generated traces span, ending now. */
const SPAN_DAYS = 30;
/** Same as services/trace/src/store/traces.ts TOTAL_COUNT_CAP. */
const COUNT_CAP = 1_000;

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
 * last SPAN_DAYS; 20 workspaces; 1 in 17 traces errors, 1 in 101 blocked; 3 models; labels env
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
         'exec-' || i, 'ws-' || (i % 20), 'prod', case when i % 2 = 0 then 'support' else 'sales' end, 'user-' || (i % 1000),
         (array['gpt-4o', 'gpt-4o-mini', 'claude-sonnet'])[1 + i % 3], 'openai', 'abcdef0123456789',
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

const day = (n) => new Date(Date.now() - n * 86_400_000).toISOString();
const windowStart = day(8);
const windowEnd = day(7);

/** Each scenario: the REST query string, and the equivalent WHERE clause and parameters for the baseline. */
const scenarios = [
  { name: "no filter", query: "", where: "", params: [] },
  { name: "no filter, limit=1 (fixed cost)", query: "limit=1", where: "", params: [], limit: 1 },
  { name: "workspace_id", query: "workspace_id=ws-7", where: "and workspace_id = $2", params: ["ws-7"] },
  { name: "status=error", query: "status=error", where: "and status = $2", params: [3] },
  { name: "1-day time range", query: `start_time=${windowStart}&end_time=${windowEnd}`, where: "and started_at >= $2 and started_at < $3", params: [windowStart, windowEnd] },
  { name: "label env=prod", query: "label_key=env&label_value=prod", where: "and labels @> $2::jsonb", params: [JSON.stringify({ env: "prod" })] },
  { name: "label key team", query: "label_key=team", where: "and labels ? $2", params: ["team"] },
  { name: "status+workspace+range", query: `status=error&workspace_id=ws-3&start_time=${day(20)}`, where: "and status = $2 and workspace_id = $3 and started_at >= $4", params: [3, "ws-3", day(20)] },
];

/** The statement the service runs per GET /traces: the page with each row's first annotations and the capped count. */
function baselineCall(pool, scenario) {
  const page = `select *, to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as started_at_key,
      (select jsonb_object_agg(first.key, first.value) from (select distinct on (a.key) a.key, a.value from trace.trace_annotations as a
        where a.tenant_id = traces.tenant_id and a.trace_id = traces.trace_id order by a.key, a.created_at, a.annotation_id) as first) as first_annotations,
      (select count(*) as n from (select 1 as one from trace.traces where tenant_id = $1 ${scenario.where} limit ${COUNT_CAP}) as matches) as total_capped
    from trace.traces where tenant_id = $1 ${scenario.where} order by started_at desc, trace_id desc limit ${(scenario.limit ?? 50) + 1}`;
  const params = [tenant, ...scenario.params];
  return async () => {
    await pool.query(page, params);
  };
}

const fmt = (n) => n.toFixed(2);

if (!values.reuse) {
  await admin(`drop database if exists ${database} with (force)`);
  await admin(`create database ${database}`);
}
const port = await freePort();
const dataDir = await mkdtemp(path.join(tmpdir(), "clasper-bench-"));
let system;
const pool = new pg.Pool({ connectionString: benchUrl, max: 20 });
try {
  // The server migrates the empty database on start; the traces are generated afterwards.
  system = await startChild(process.execPath, [path.join(root, "packages/cli/dist/bin.js"), "serve"], {
    env: { CLASPER_PORT: String(port), CLASPER_HOST: "127.0.0.1", CLASPER_DATA_DIR: dataDir, CLASPER_AUTH_JWT_SECRET: secret, LOG_LEVEL: "warn", NODE_ENV: "production", DATABASE_URL: benchUrl },
    url: `http://127.0.0.1:${port}/healthz`,
  });
  const seedClient = new pg.Client({ connectionString: benchUrl });
  await seedClient.connect();
  const seedStarted = performance.now();
  if (!values.reuse) await seed(seedClient);
  const tenantRows = (await seedClient.query("select count(*)::int as n from trace.traces where tenant_id = $1", [tenant])).rows[0].n;
  await seedClient.end();
  const seedSeconds = (performance.now() - seedStarted) / 1000;

  const token = await new SignJWT({ tenant_id: tenant, user_id: "bench", roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("2h").sign(new TextEncoder().encode(secret));
  const headers = { authorization: `Bearer ${token}` };
  const apiCall = (scenario) => async () => {
    const res = await fetch(`http://127.0.0.1:${port}/traces${scenario.query ? `?${scenario.query}` : ""}`, { headers });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${scenario.name}: HTTP ${res.status} ${body.slice(0, 200)}`);
  };

  const results = [];
  for (const scenario of scenarios) {
    // Warm-up: JIT, pool connections, the index pages this filter reads.
    await measure(apiCall(scenario), 1);
    await measure(baselineCall(pool, scenario), 1);
    const base = await measure(baselineCall(pool, scenario), duration);
    const api = await measure(apiCall(scenario), duration);
    results.push({ scenario, base, api });
  }

  console.log(`\ncommand: pnpm bench trace-query --traces ${total} --duration ${duration} --connections ${connections}${values.postgres ? " --postgres <admin url>" : ""}`);
  console.log(
    `PostgreSQL (${database}), node ${process.version}, ${total.toLocaleString("en")} traces seeded in ${seedSeconds.toFixed(0)} s, ` +
      `tenant ${tenant} holds ${tenantRows.toLocaleString("en")}; page size 50 unless shown; ${connections} concurrent requests, ${duration} s per run\n`,
  );
  console.log("| GET /traces filter | API req/s | API p50 ms | API p95 ms | API p99 ms | SQL-only req/s | SQL-only p50 ms | SQL-only p95 ms | SQL-only p99 ms | API/SQL p95 |");
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const { scenario, base, api } of results) {
    console.log(`| ${scenario.name} | ${api.rps.toFixed(0)} | ${fmt(api.p50)} | ${fmt(api.p95)} | ${fmt(api.p99)} | ${base.rps.toFixed(0)} | ${fmt(base.p50)} | ${fmt(base.p95)} | ${fmt(base.p99)} | ${(api.p95 / base.p95).toFixed(2)}× |`);
  }
  const worst = Math.max(...results.map((r) => r.api.p95));
  console.log(`\nworst API p95: ${fmt(worst)} ms (target ≤ 50 ms): ${worst <= 50 ? "met" : "NOT met"}`);
} finally {
  await pool.end();
  if (system) await system.stop();
  await rm(dataDir, { recursive: true, force: true });
  if (!values.keep) await admin(`drop database if exists ${database} with (force)`);
}
