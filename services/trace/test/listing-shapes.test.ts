import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql, type Kysely } from "kysely";
import { testBackendFromEnv, useFreshDatabase } from "@clasper/db/testing";
import { compiledByShape } from "../src/store/compiled-by-shape.js";
import type { TraceDatabase } from "../src/store/schema.js";
import { listTraces, countTraces, type TraceFilter, type TracePage, type TraceScope } from "../src/store/traces.js";
import { ago, seedExecution, traceDb } from "./query-fixtures.js";

/*
 * Listings compile once per shape (which filters, which kind of page) and run with each call's
 * values. Every filter alone and every pair of filters, each with two sets of values (so most
 * calls reuse a shape compiled for other values), under every kind of page and scope, must list
 * exactly what the filter means, computed here from the seeded traces.
 */

let db: Kysely<TraceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "trace", (fresh) => {
  db = traceDb(fresh);
});

const TENANT = "t-shapes";

interface Seeded {
  traceId: string;
  startedAt: Date;
  workspaceId: string;
  agentRole: string;
  status: number;
  model: string;
  costMicros: number;
  riskLevel: number | undefined;
  labels: Record<string, string>;
  taskId: string | undefined;
  documentId: string | undefined;
  messageId: string | undefined;
}

const traces: Seeded[] = [];
const base = ago(3);

beforeAll(async () => {
  for (let i = 0; i < 36; i++) {
    const trace: Seeded = {
      traceId: i.toString(16).padStart(2, "0").repeat(16),
      // Pairs of traces share a start, so the order falls back to trace_id.
      startedAt: new Date(base.getTime() - Math.floor(i / 2) * 3_600_000),
      workspaceId: `ws-${i % 3}`,
      agentRole: i % 4 === 0 ? "sales" : "support",
      status: i % 5 === 0 ? 3 : 2,
      model: ["gpt-4o", "claude", "o3"][i % 3]!,
      costMicros: (i % 7) * 1000,
      riskLevel: i % 6 === 0 ? undefined : 1 + (i % 4),
      labels: i % 3 === 0 ? {} : i % 3 === 1 ? { env: "prod", team: `t${i % 2}` } : { env: "dev" },
      taskId: i % 4 === 1 ? `task-${i % 8}` : undefined,
      documentId: i % 5 === 2 ? "doc-1" : undefined,
      messageId: i % 9 === 3 ? `msg-${i % 2}` : undefined,
    };
    traces.push(trace);
    await seedExecution(db, {
      tenantId: TENANT,
      withSpans: false,
      ...trace,
      llmCalls: [{ model: trace.model, costMicros: trace.costMicros }],
    });
  }
  // Another tenant's traces match the same filters and must never show up.
  for (let i = 0; i < 3; i++) await seedExecution(db, { tenantId: "t-shapes-other", withSpans: false, workspaceId: "ws-1", labels: { env: "prod" }, startedAt: base });
});

/** Two values per filter: each matches some traces, and some combinations match none. */
const FILTER_VALUES: { [K in keyof TraceFilter]-?: [TraceFilter[K], TraceFilter[K]] } = {
  workspaceId: ["ws-1", "ws-2"],
  agentRole: ["sales", "support"],
  status: [3, 2],
  model: ["claude", "o3"],
  startTime: [new Date(base.getTime() - 10 * 3_600_000), new Date(base.getTime() - 4 * 3_600_000)],
  endTime: [new Date(base.getTime() - 3 * 3_600_000), new Date(base.getTime() - 12 * 3_600_000)],
  labelKey: ["env", "team"],
  labelValue: ["prod", "t1"],
  minCostMicros: [2000n, 5000n],
  maxCostMicros: [3000n, 6000n],
  riskLevel: [2, 4],
  taskId: ["task-1", "task-5"],
  documentId: ["doc-1", "doc-2"],
  messageId: ["msg-1", "msg-0"],
  matchesNothing: [true, true],
};
type FilterKey = keyof TraceFilter;
const KEYS = Object.keys(FILTER_VALUES) as FilterKey[];

function filterOf(keys: readonly FilterKey[], which: 0 | 1): TraceFilter {
  const filter: Record<string, unknown> = {};
  for (const key of keys) filter[key] = FILTER_VALUES[key][which];
  // A label value needs its key (the API refuses it alone).
  if (filter["labelValue"] !== undefined && filter["labelKey"] === undefined) filter["labelKey"] = which === 0 ? "env" : "team";
  return filter as TraceFilter;
}

/** What the filter means, over the seeded traces, newest first. */
function expected(scope: TraceScope, f: TraceFilter): Seeded[] {
  return traces
    .filter(
      (t) =>
        !f.matchesNothing &&
        (scope.workspaceId === undefined || t.workspaceId === scope.workspaceId) &&
        (f.workspaceId === undefined || t.workspaceId === f.workspaceId) &&
        (f.agentRole === undefined || t.agentRole === f.agentRole) &&
        (f.status === undefined || t.status === f.status) &&
        (f.model === undefined || t.model === f.model) &&
        (f.startTime === undefined || t.startedAt >= f.startTime) &&
        (f.endTime === undefined || t.startedAt < f.endTime) &&
        (f.minCostMicros === undefined || BigInt(t.costMicros) >= f.minCostMicros) &&
        (f.maxCostMicros === undefined || BigInt(t.costMicros) <= f.maxCostMicros) &&
        (f.riskLevel === undefined || t.riskLevel === f.riskLevel) &&
        (f.taskId === undefined || t.taskId === f.taskId) &&
        (f.documentId === undefined || t.documentId === f.documentId) &&
        (f.messageId === undefined || t.messageId === f.messageId) &&
        (f.labelKey === undefined || (f.labelValue === undefined ? f.labelKey in t.labels : t.labels[f.labelKey] === f.labelValue)),
    )
    .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime() || (a.traceId < b.traceId ? 1 : -1));
}

const PAGES = ["first", "offset", "cursor"] as const;
const LIMIT = 3;

async function expectListing(scope: TraceScope, filter: TraceFilter, pageKind: (typeof PAGES)[number], withTotal: boolean): Promise<void> {
  const all = expected(scope, filter);
  let page: TracePage = { limit: LIMIT, offset: 0 };
  let from = 0;
  if (pageKind === "offset") {
    page = { limit: LIMIT, offset: 2 };
    from = 2;
  } else if (pageKind === "cursor" && all.length > 1) {
    // The cursor of the first row (its start as the database writes it).
    const after = all[0]!;
    const { rows } = await sql<{ key: string }>`select to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as key from trace.traces where tenant_id = ${TENANT} and trace_id = ${after.traceId}`.execute(db);
    page = { limit: LIMIT, offset: 5, after: { startedAt: rows[0]!.key, traceId: after.traceId } };
    from = 1;
  }
  const listed = await listTraces(db, scope, filter, page, { withTotal });
  const want = all.slice(from, from + LIMIT);
  const what = JSON.stringify({ scope, filter, pageKind, withTotal }, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
  expect(listed.rows.map((r) => r.trace_id), what).toEqual(want.map((t) => t.traceId));
  expect(listed.hasMore, what).toBe(all.length > from + LIMIT);
  expect(listed.total, what).toBe(withTotal && want.length > 0 ? all.length : undefined);
  expect(await countTraces(db, scope, filter), what).toBe(all.length);
}

describe(`trace listings compiled once per shape (${testBackendFromEnv()})`, () => {
  it("list exactly what every filter and every pair of filters means, for any values, page and scope", async () => {
    const combinations: FilterKey[][] = [[]];
    for (const [i, a] of KEYS.entries()) {
      combinations.push([a]);
      for (const b of KEYS.slice(i + 1)) combinations.push([a, b]);
    }
    let n = 0;
    for (const keys of combinations) {
      for (const which of [0, 1] as const) {
        n++;
        const scope: TraceScope = n % 4 === 0 ? { tenantId: TENANT, workspaceId: "ws-1" } : { tenantId: TENANT };
        await expectListing(scope, filterOf(keys, which), PAGES[n % PAGES.length]!, n % 2 === 0);
      }
    }
    expect(n).toBe(2 * (1 + KEYS.length + (KEYS.length * (KEYS.length - 1)) / 2));
  });

  it("compiles a shape once, and keeps no more shapes than its cap", async () => {
    let compiles = 0;
    const statement = compiledByShape((kysely: Kysely<TraceDatabase>, v: { traceId: string; model?: string }) => {
      compiles++;
      let q = kysely.selectFrom("traces").select("trace_id").where("trace_id", "=", v.traceId);
      if (v.model !== undefined) q = q.where("model", "=", v.model);
      return q;
    }, 1);
    const ids = async (values: { traceId: string; model?: string }) => (await db.executeQuery(statement(db, values))).rows.map((r) => r.trace_id);
    const [a, b] = [traces[0]!, traces[1]!];
    expect(await ids({ traceId: a.traceId })).toEqual([a.traceId]);
    expect(await ids({ traceId: b.traceId })).toEqual([b.traceId]);
    expect(compiles).toBe(1);
    // A second shape is beyond the cap: compiled for each call, and still right.
    expect(await ids({ traceId: b.traceId, model: b.model })).toEqual([b.traceId]);
    expect(await ids({ traceId: b.traceId, model: "none" })).toEqual([]);
    expect(compiles).toBe(3);
    expect(await ids({ traceId: a.traceId })).toEqual([a.traceId]);
    expect(compiles).toBe(3);
  });

  it("refuses a statement that would freeze a value into its shape", () => {
    const statement = compiledByShape((kysely: Kysely<TraceDatabase>, v: { traceId: string }) =>
      kysely.selectFrom("traces").select("trace_id").where("trace_id", "=", `${v.traceId}`),
    );
    expect(() => statement(db, { traceId: "ab" })).toThrow(/not one of the values/);
  });
});
