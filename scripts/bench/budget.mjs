// `pnpm bench budget [--postgres URL] [--duration S] [--concurrency N] [--pool N] [--tenants N] [--rate R] [--in-flight N] [--batch N] [--direct | --transaction] [--store DIR]`
// What budget enforcement costs on PostgreSQL: ReserveBudget + SettleBudget round trips called
// exactly as the RPC handlers call them: through the governance service's BudgetBatcher
// (src/budget-batcher.ts), which sends the calls that arrive while earlier batches are in flight
// as one batch function call (`--in-flight N` batches at once per kind, default 1; at most
// `--batch N` items each, default 256). For comparisons: `--direct` calls the single-item store
// functions, one autocommit statement per call (the handlers before 2026-11-27), `--transaction`
// the same inside BEGIN … COMMIT (before 2026-11-24). On a real pg pool, at N-way concurrency.
// Baseline in the same run, same pool, same concurrency: a trivial `select 1` round trip. Runs on
// a fresh database created (and dropped) for the run.
//
// Scenarios: closed loop (N workers back to back: the ceiling) over many tenants and over one hot
// tenant (every reservation contends for the same budget row lock), then an open loop at a fixed
// reservation rate (default 2,000/s, at most N in flight) for the latency the target is about.
// Every run also reports CPU per unit of work: this process (process.cpuUsage) and the PostgreSQL
// backends of its pool (utime + stime from /proc/<pid>/stat), which swing much less than
// wall-clock figures on a shared machine.
// Build first (`npx tsc -b`): it imports the built store (`--store DIR`: another build's
// services/governance/dist, for A/B comparisons; a build without the batcher needs `--direct`).
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const { values } = parseArgs({
  options: {
    postgres: { type: "string" },
    duration: { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    pool: { type: "string", default: "16" },
    tenants: { type: "string", default: "64" },
    rate: { type: "string", default: "2000" },
    "in-flight": { type: "string", default: "1" },
    batch: { type: "string", default: "256" },
    direct: { type: "boolean", default: false },
    transaction: { type: "boolean", default: false },
    store: { type: "string" },
  },
});
const url = values.postgres ?? process.env.TEST_DATABASE_URL ?? "postgres://clasper:clasper@127.0.0.1:5432/clasper_test";
const duration = Number(values.duration) * 1000;
const concurrency = Number(values.concurrency);
const poolMax = Number(values.pool);
const tenantCount = Number(values.tenants);
const rate = Number(values.rate);

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const load = (rel) => import(pathToFileURL(path.join(root, rel)).href);
const { createDatabase, migrateSchema, withTransaction } = await load("packages/db/dist/index.js");
const { migrations } = await load("services/governance/dist/migrations/index.js");
const storeDir = values.store ? path.resolve(values.store) : path.join(root, "services/governance/dist");
const { reserveBudget, settleBudget, upsertBudget } = await import(pathToFileURL(path.join(storeDir, "src/store/budgets.js")).href);
const batched = !values.direct && !values.transaction;
const { BudgetBatcher } = batched ? await import(pathToFileURL(path.join(storeDir, "src/budget-batcher.js")).href) : {};
const { DEFAULT_BUDGET } = await load("services/governance/dist/src/budget-check.js");
const { sql } = await import(pathToFileURL(path.join(root, "packages/db/node_modules/kysely/dist/esm/index.js")).href);

// A database of its own, so the run neither sees nor leaves other data.
const dbName = `clasper_bench_budget_${process.pid}`;
const admin = await createDatabase({ url, poolMax: 1 });
await sql`create database ${sql.id(dbName)}`.execute(admin.kysely);
const benchUrl = new URL(url);
benchUrl.pathname = `/${dbName}`;
const database = await createDatabase({ url: benchUrl.toString(), poolMax: poolMax });
await migrateSchema(database, "governance", migrations);
const db = database.forSchema("governance");

const AMOUNT = 10_000n;
const tenants = Array.from({ length: tenantCount }, (_, i) => `bench-${i}`);
for (const t of [...tenants, "bench-hot"]) {
  // Hard budgets that never run out during the run: every reservation goes through the full check.
  await upsertBudget(db, t, { limitMicros: 1_000_000_000_000_000n, hardLimit: true, period: "monthly" }, new Date());
}

// Open the pool's connections before measuring (the batcher keeps few busy, and the pool closes
// idle ones; CPU is read per run from the backends that exist at its start and end).
await Promise.all(Array.from({ length: poolMax }, () => sql`select pg_sleep(0.05)`.execute(database.kysely)));
const TICK_US = 1e6 / 100; // USER_HZ
/** CPU µs so far of each backend connected to the bench database (from /proc: none when the server is remote). */
async function backendCpu() {
  const pids = (await sql`select pid from pg_stat_activity where datname = ${dbName}`.execute(admin.kysely)).rows.map((r) => r.pid);
  const byPid = new Map();
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      byPid.set(pid, (Number(fields[11]) + Number(fields[12])) * TICK_US); // utime, stime
    } catch {
      // not on this host (remote server), or the backend has just gone
    }
  }
  return byPid;
}

/**
 * Reserve and settle as the handlers run them (the batcher), or for comparison one autocommit
 * statement per call (`--direct`) or BEGIN … COMMIT around each (`--transaction`).
 */
const budgets = batched
  ? new BudgetBatcher(db, { maxInFlight: Number(values["in-flight"]), maxBatchSize: Number(values.batch), logger: { warn: (o, m) => console.error(m, o.err) } })
  : (() => {
      const run = values.transaction ? (op) => withTransaction(db, op) : (op) => op(db);
      return {
        reserve: (tenantId, input) => run((exec) => reserveBudget(exec, tenantId, input)),
        settle: (tenantId, input) => run((exec) => settleBudget(exec, tenantId, input)),
      };
    })();

let seq = 0;
/** One execution's budget round trip: reserve the worst case, settle the actual cost. */
async function reserveAndSettle(tenantId, timings) {
  const t0 = performance.now();
  const reserved = await budgets.reserve(tenantId, { executionId: `e-${process.pid}-${++seq}`, amountMicros: AMOUNT, defaults: DEFAULT_BUDGET, now: new Date() });
  const t1 = performance.now();
  if (reserved.status !== "reserved") throw new Error(`reservation ${reserved.status}`);
  await budgets.settle(tenantId, { reservationId: reserved.reservation.reservation_id, actualMicros: AMOUNT / 2n, now: new Date() });
  const t2 = performance.now();
  timings.reserve.push(t1 - t0);
  timings.settle.push(t2 - t1);
  timings.pair.push(t2 - t0);
}

async function selectOne(timings) {
  const t0 = performance.now();
  await sql`select 1`.execute(database.kysely);
  timings.pair.push(performance.now() - t0);
}

const newTimings = () => ({ reserve: [], settle: [], pair: [] });

/**
 * CPU µs of this process and of the bench database's backends from now until the returned
 * function is called. A backend the pool closed meanwhile (idle past its timeout) did no work;
 * one it opened counts from zero.
 */
async function cpuMeter() {
  const node0 = process.cpuUsage();
  const pg0 = await backendCpu();
  return async () => {
    const node = process.cpuUsage(node0);
    let pgUs = 0;
    for (const [pid, us] of await backendCpu()) pgUs += us - (pg0.get(pid) ?? 0);
    return { nodeUs: node.user + node.system, pgUs };
  };
}

/** N workers back to back for `ms`. */
async function closedLoop(op, ms) {
  const timings = newTimings();
  const end = performance.now() + ms;
  const start = performance.now();
  const cpu = await cpuMeter();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) await op(w, i, timings);
    }),
  );
  return { timings, seconds: (performance.now() - start) / 1000, cpu: await cpu() };
}

/** Starts one operation every 1/rate s (at most `concurrency` in flight; a full house counts as a miss). */
async function openLoop(op, ms, perSecond) {
  const timings = newTimings();
  const start = performance.now();
  const cpu = await cpuMeter();
  let inFlight = 0;
  let started = 0;
  let skipped = 0;
  const pending = new Set();
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) / 1000) * perSecond);
    while (started < due) {
      started++;
      if (inFlight >= concurrency) {
        skipped++;
        continue;
      }
      inFlight++;
      const p = op(started, timings).finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    // A 1 ms timer, not setImmediate: a spinning scheduler would take a core from the database.
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return { timings, seconds: (performance.now() - start) / 1000, skipped, cpu: await cpu() };
}

function pct(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const fmt = (v) => v.toFixed(2);
/** A table row: rate, its ratio to the `select 1` baseline, latency, and CPU µs per unit (pair or query). */
function line(label, list, result, base, withCpu = true) {
  const rate = list.length / result.seconds;
  const ratio = base ? `${(rate / (base.timings.pair.length / base.seconds)).toFixed(3)}×` : withCpu ? "1.000×" : "";
  const cpu = withCpu ? `${(result.cpu.nodeUs / list.length).toFixed(0)} | ${(result.cpu.pgUs / list.length).toFixed(0)}` : " | ";
  return `| ${label} | ${rate.toFixed(0)} | ${ratio} | ${fmt(pct(list, 50))} | ${fmt(pct(list, 99))} | ${cpu} |`;
}

try {
  const spread = (w, i, t) => reserveAndSettle(tenants[(w + i) % tenants.length], t);
  const hot = (_w, _i, t) => reserveAndSettle("bench-hot", t);
  // Warm-up: JIT, pool connections, plan caches.
  await closedLoop((_w, _i, t) => selectOne(t), 1000);
  await closedLoop(spread, 2000);

  const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const base = await closedLoop((_w, _i, t) => selectOne(t), duration);
  const many = await closedLoop(spread, duration);
  const one = await closedLoop(hot, duration);
  const sent0 = batched ? { ...budgets.counts() } : undefined;
  const fixed = await openLoop((n, t) => reserveAndSettle(tenants[n % tenants.length], t), duration, rate);
  const sent1 = batched ? { ...budgets.counts() } : undefined;
  const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

  const how = batched ? ` --in-flight ${values["in-flight"]} --batch ${values.batch}` : values.transaction ? " --transaction" : " --direct";
  const flags = `${how}${values.store ? ` --store ${values.store}` : ""}${values.postgres ? " --postgres <url>" : ""}`;
  console.log(`\ncommand: pnpm bench budget --duration ${duration / 1000} --concurrency ${concurrency} --pool ${poolMax} --tenants ${tenantCount} --rate ${rate}${flags}`);
  console.log(`PostgreSQL (${(await sql`select version() as v`.execute(database.kysely)).rows[0].v.split(" on ")[0]}), node ${process.version}, ${concurrency}-way concurrency, pg pool ${poolMax}, ${duration / 1000} s per run, load average ${load0} before, ${load1} after`);
  console.log(
    batched
      ? `Reservations and settlements as the RPC handlers run them: through the BudgetBatcher (concurrent calls share one batch call and one commit; up to ${values["in-flight"]} batches of each kind in flight).\n`
      : values.transaction
        ? "Each reservation and each settlement in its own explicit transaction (BEGIN, the call, COMMIT).\n"
        : "Each reservation and each settlement as one autocommit statement of its own (the single-item store functions, no batching).\n",
  );
  console.log("| run | per s | vs `select 1` | p50 ms | p99 ms | node CPU µs per unit | PostgreSQL CPU µs per unit |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(line("baseline: `select 1` round trip (closed loop)", base.timings.pair, base));
  console.log(line(`closed loop, ${tenantCount} tenants: reserve + settle (pair)`, many.timings.pair, many, base));
  console.log(line(`  reserve`, many.timings.reserve, many, undefined, false));
  console.log(line(`  settle`, many.timings.settle, many, undefined, false));
  console.log(line("closed loop, 1 hot tenant: reserve + settle (pair)", one.timings.pair, one, base));
  console.log(line(`  reserve`, one.timings.reserve, one, undefined, false));
  console.log(line(`  settle`, one.timings.settle, one, undefined, false));
  console.log(line(`open loop at ${rate} reservations/s, ${tenantCount} tenants: reserve + settle (pair)`, fixed.timings.pair, fixed, base));
  console.log(line(`  reserve`, fixed.timings.reserve, fixed, undefined, false));
  console.log(line(`  settle`, fixed.timings.settle, fixed, undefined, false));
  console.log("\nCPU per unit: per reserve + settle pair (per query for the baseline); PostgreSQL = the pool's backends, from /proc (0 when the server is remote).");
  if (sent0 && sent1) {
    const batches = sent1.batches - sent0.batches;
    const items = sent1.batchedItems - sent0.batchedItems;
    const alone = sent1.alone - sent0.alone;
    console.log(`\nopen loop through the batcher: ${batches} batch calls of ${batches ? (items / batches).toFixed(1) : 0} operations on average, ${alone} operations alone, ${sent1.failedBatches - sent0.failedBatches} failed batches`);
  }
  if (fixed.skipped > 0) console.log(`\nopen loop: ${fixed.skipped} of ${fixed.skipped + fixed.timings.pair.length} scheduled reservations found ${concurrency} already in flight and were not sent`);
  const p99 = pct(fixed.timings.reserve, 99);
  const achieved = fixed.timings.reserve.length / fixed.seconds;
  console.log(`\ntarget p99 <= 2 ms at 2,000 reservations/s: reserve p99 ${fmt(p99)} ms at ${achieved.toFixed(0)}/s -> ${p99 <= 2 && achieved >= 0.98 * 2000 ? "met" : "NOT met"}`);
} finally {
  await database.close();
  await sql`drop database if exists ${sql.id(dbName)} with (force)`.execute(admin.kysely);
  await admin.close();
}
