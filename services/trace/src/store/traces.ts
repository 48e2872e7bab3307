import { sql, type ExpressionBuilder, type Kysely, type Selectable, type SelectQueryBuilder, type Transaction } from "kysely";
import { PLAN_PER_CALL } from "@clasper/db";
import type { TraceCursor } from "../query/cursor.js";
import { compiledByShape } from "./compiled-by-shape.js";
import type { TraceDatabase, TracesTable } from "./schema.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

/**
 * Whose traces a query may see: always one tenant, and one workspace when the caller's token is
 * bound to a workspace. Every function here takes it, so no query can forget the tenant.
 */
export interface TraceScope {
  tenantId: string;
  workspaceId?: string | undefined;
}

/** Filters of the trace listings; every one is applied in SQL, so totals and pages are exact. */
export interface TraceFilter {
  workspaceId?: string;
  agentRole?: string;
  /** TraceStatus number. */
  status?: number;
  model?: string;
  /** Inclusive. */
  startTime?: Date;
  /** Exclusive. */
  endTime?: Date;
  labelKey?: string;
  labelValue?: string;
  minCostMicros?: bigint;
  maxCostMicros?: bigint;
  /** RiskLevel number. */
  riskLevel?: number;
  taskId?: string;
  documentId?: string;
  messageId?: string;
  /** A filter no stored trace can satisfy (e.g. a trust status traces never have). */
  matchesNothing?: boolean;
}

export interface TracePage {
  limit: number;
  offset: number;
  after?: TraceCursor | undefined;
}

export type TraceRow = Selectable<TracesTable> & {
  /** started_at as UTC text with microseconds: the cursor key (see query/cursor.ts). */
  started_at_key: string;
};

/**
 * `total` counts at most this many matches (a lower bound beyond it). An exact count over a
 * tenant with a million traces reads every matching index entry and heap row on each page
 * request (60-600 ms on the benchmark's 1M traces); a capped count stops after this many, and a
 * client paging further follows has_more/next_cursor anyway. 1,000 = 20 pages of the default
 * size, the depth a person pages through; scripts/bench/trace-query.mjs shows the cost.
 */
export const TOTAL_COUNT_CAP = 1_000;

type TraceQuery<O> = SelectQueryBuilder<TraceDatabase, "traces", O>;

function inScope<O>(query: TraceQuery<O>, scope: TraceScope): TraceQuery<O> {
  let q = query.where("traces.tenant_id", "=", scope.tenantId);
  if (scope.workspaceId !== undefined) q = q.where("traces.workspace_id", "=", scope.workspaceId);
  return q;
}

/**
 * Scope and filter as the statements take them: one value per condition, undefined when the
 * condition does not apply. Which conditions apply is decided here, so that the statements below
 * depend only on which values are given (see compiledByShape).
 */
interface FilterValues {
  tenantId: string;
  scopeWorkspaceId: string | undefined;
  matchesNothing: true | undefined;
  workspaceId: string | undefined;
  agentRole: string | undefined;
  status: number | undefined;
  model: string | undefined;
  startTime: Date | undefined;
  endTime: Date | undefined;
  minCostMicros: bigint | undefined;
  maxCostMicros: bigint | undefined;
  riskLevel: number | undefined;
  taskId: string | undefined;
  documentId: string | undefined;
  messageId: string | undefined;
  /** `{key: value}` as JSON, for a label with a value; `labelKey` for a key alone. */
  labelContains: string | undefined;
  labelKey: string | undefined;
}

function filterValues(scope: TraceScope, f: TraceFilter): FilterValues {
  const labelGiven = f.labelKey !== undefined;
  return {
    tenantId: scope.tenantId,
    scopeWorkspaceId: scope.workspaceId,
    matchesNothing: f.matchesNothing ? true : undefined,
    // A workspace-bound scope already has this condition; twice, the planner would square its selectivity.
    workspaceId: f.workspaceId !== scope.workspaceId ? f.workspaceId : undefined,
    agentRole: f.agentRole,
    status: f.status,
    model: f.model,
    startTime: f.startTime,
    endTime: f.endTime,
    minCostMicros: f.minCostMicros,
    maxCostMicros: f.maxCostMicros,
    riskLevel: f.riskLevel,
    taskId: f.taskId,
    documentId: f.documentId,
    messageId: f.messageId,
    labelContains: labelGiven && f.labelValue !== undefined ? JSON.stringify({ [f.labelKey!]: f.labelValue }) : undefined,
    labelKey: labelGiven && f.labelValue === undefined ? f.labelKey : undefined,
  };
}

function filtered<O>(query: TraceQuery<O>, v: FilterValues): TraceQuery<O> {
  let q = inScope(query, { tenantId: v.tenantId, workspaceId: v.scopeWorkspaceId });
  if (v.matchesNothing) q = q.where(sql<boolean>`false`);
  if (v.workspaceId !== undefined) q = q.where("workspace_id", "=", v.workspaceId);
  if (v.agentRole !== undefined) q = q.where("agent_role", "=", v.agentRole);
  if (v.status !== undefined) q = q.where("status", "=", v.status);
  if (v.model !== undefined) q = q.where("model", "=", v.model);
  if (v.startTime !== undefined) q = q.where("started_at", ">=", v.startTime);
  if (v.endTime !== undefined) q = q.where("started_at", "<", v.endTime);
  if (v.minCostMicros !== undefined) q = q.where("cost_micros", ">=", v.minCostMicros);
  if (v.maxCostMicros !== undefined) q = q.where("cost_micros", "<=", v.maxCostMicros);
  if (v.riskLevel !== undefined) q = q.where("risk_level", "=", v.riskLevel);
  if (v.taskId !== undefined) q = q.where("task_id", "=", v.taskId);
  if (v.documentId !== undefined) q = q.where("document_id", "=", v.documentId);
  if (v.messageId !== undefined) q = q.where("message_id", "=", v.messageId);
  // Containment uses the jsonb_path_ops GIN index; key existence cannot, but is rarer.
  if (v.labelContains !== undefined) q = q.where(sql<boolean>`labels @> ${v.labelContains}::jsonb`);
  if (v.labelKey !== undefined) q = q.where(sql<boolean>`labels ? ${v.labelKey}`);
  if (v.labelContains !== undefined || v.labelKey !== undefined) {
    // A label value's frequency decides the plan: the labels GIN index for a rare value,
    // newest-first with a filter for a common one. A cached generic plan, costed for an average
    // value, takes the latter for every value, and a value that matches nothing then reads every
    // trace of the tenant in the time range (20 ms instead of 0.1 ms for one day of the
    // benchmark's largest tenant). So label listings are planned for their values on every call.
    q = q.modifyFront(sql.raw(PLAN_PER_CALL));
  }
  return q;
}

/** The listing order, which every listing index has after its equality columns. */
function newestFirst<O>(query: TraceQuery<O>): TraceQuery<O> {
  return query.orderBy("started_at", "desc").orderBy("trace_id", "desc");
}

const startedAtKey = sql<string>`to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

function selectRows(db: Executor): TraceQuery<TraceRow> {
  return db.selectFrom("traces").selectAll("traces").select(startedAtKey.as("started_at_key"));
}

/**
 * The columns a listing renders (query/view.ts traceSummary). A page leaves out the rest, above
 * all the messages and error text, which can be kilobytes per trace.
 */
const SUMMARY_COLUMNS = [
  "trace_id",
  "workspace_id",
  "environment",
  "agent_role",
  "status",
  "started_at",
  "duration_ms",
  "model",
  "provider",
  "input_tokens",
  "output_tokens",
  "cache_read_tokens",
  "cache_write_tokens",
  "reasoning_tokens",
  "cost_micros",
  "skill_versions",
  "labels",
  "risk_level",
  "tool_call_count",
  "error_code",
  "task_id",
  "document_id",
  "message_id",
] as const satisfies readonly (keyof TracesTable)[];

export type TraceSummaryRow = Pick<Selectable<TracesTable>, (typeof SUMMARY_COLUMNS)[number]> & {
  /** As in TraceRow. */
  started_at_key: string;
};

export type TracePageRow = TraceSummaryRow & {
  /** The trace's annotations: key → its oldest value. */
  first_annotations: Record<string, string> | null;
  /** Matching traces (all pages) counted up to TOTAL_COUNT_CAP; only with `withTotal`. */
  total_capped?: string | number | bigint;
};

/** A listing's values: the filter's, the page's, and the count's cap when the total is wanted. */
interface ListingValues extends FilterValues {
  /** Rows to read: one more than the page, to learn has_more. */
  rows: number;
  afterStartedAt: string | undefined;
  afterTraceId: string | undefined;
  offset: number | undefined;
  countCap: number | undefined;
}

/** The trace's annotations, key → its oldest value, as a JSON object (null without any). */
function firstAnnotations(eb: ExpressionBuilder<TraceDatabase, "traces">) {
  return eb
    .selectFrom(
      eb
        .selectFrom("trace_annotations as a")
        .select(["a.key", "a.value"])
        .distinctOn("a.key")
        .whereRef("a.tenant_id", "=", "traces.tenant_id")
        .whereRef("a.trace_id", "=", "traces.trace_id")
        .orderBy("a.key")
        .orderBy("a.created_at")
        .orderBy("a.annotation_id")
        .as("first"),
    )
    .select((inner) => inner.fn<Record<string, string> | null>("jsonb_object_agg", ["first.key", "first.value"]).as("agg"))
    .as("first_annotations");
}

const listingStatement = compiledByShape((db: Executor, v: ListingValues) => {
  let q = filtered(db.selectFrom("traces").select(SUMMARY_COLUMNS).select(startedAtKey.as("started_at_key")), v).select(firstAnnotations);
  if (v.countCap !== undefined) q = q.select(cappedCount(db, v, v.countCap).as("total_capped"));
  if (v.afterStartedAt !== undefined) {
    q = q.where(sql<boolean>`(started_at, trace_id) < (${v.afterStartedAt}::timestamptz, ${v.afterTraceId})`);
  } else if (v.offset !== undefined) {
    q = q.offset(v.offset);
  }
  return newestFirst(q).limit(v.rows);
});

/**
 * One page, newest first (started_at desc, trace_id desc: the order of the listing indexes).
 * With a cursor the page starts strictly after it (keyset, stable under concurrent inserts);
 * without one, `offset` rows are skipped. Reads one row more than `limit` to learn has_more.
 * Each row carries its first annotation values, and with `withTotal` the capped count of all
 * matches, so a listing is one round trip to the database (the count is an uncorrelated
 * sub-select, evaluated once). `total` is undefined only when the page is empty.
 */
export async function listTraces(
  db: Executor,
  scope: TraceScope,
  filter: TraceFilter,
  page: TracePage,
  options: { withTotal?: boolean } = {},
): Promise<{ rows: TracePageRow[]; hasMore: boolean; total: number | undefined }> {
  const statement = listingStatement(db, {
    ...filterValues(scope, filter),
    rows: page.limit + 1,
    afterStartedAt: page.after?.startedAt,
    afterTraceId: page.after?.traceId,
    offset: page.after === undefined && page.offset > 0 ? page.offset : undefined,
    countCap: options.withTotal ? TOTAL_COUNT_CAP : undefined,
  });
  const rows = (await db.executeQuery(statement)).rows as TracePageRow[];
  const first = rows[0];
  return {
    rows: rows.slice(0, page.limit),
    hasMore: rows.length > page.limit,
    total: first?.total_capped === undefined ? undefined : Number(first.total_capped),
  };
}

/**
 * The first `cap` matches in the listing's order, counted. The order is not needed for the count
 * but makes it read what the page reads: a tenant-led index in started_at order, stopping at the
 * cap. Unordered, the planner may pick a sequential scan or an unrelated index and test every
 * row on the way (60 ms for a label filter of a small tenant on 1M traces), and a generic plan,
 * estimated for an average tenant, does so for the largest one too (200 ms).
 */
function cappedCount(db: Executor, v: FilterValues, cap: number) {
  const matches = newestFirst(filtered(db.selectFrom("traces").select(sql<number>`1`.as("one")), v)).limit(cap);
  return db.selectFrom(matches.as("matches")).select((eb) => eb.fn.countAll<string | number | bigint>().as("n"));
}

const countStatement = compiledByShape((db: Executor, v: FilterValues & { cap: number }) => cappedCount(db, v, v.cap));

/** Matching traces, counted up to `cap` (TOTAL_COUNT_CAP). */
export async function countTraces(db: Executor, scope: TraceScope, filter: TraceFilter, cap = TOTAL_COUNT_CAP): Promise<number> {
  const { rows } = await db.executeQuery(countStatement(db, { ...filterValues(scope, filter), cap }));
  return Number(rows[0]!.n);
}

export async function findTrace(db: Executor, scope: TraceScope, traceId: string): Promise<TraceRow | undefined> {
  return inScope(selectRows(db), scope).where("trace_id", "=", traceId).executeTakeFirst();
}

/** Replaces the label map; undefined when the trace is not in scope. */
export async function replaceLabels(db: Executor, scope: TraceScope, traceId: string, labels: Record<string, string>): Promise<Record<string, string> | undefined> {
  let q = db
    .updateTable("traces")
    .set({ labels: JSON.stringify(labels), updated_at: new Date() })
    .where("tenant_id", "=", scope.tenantId)
    .where("trace_id", "=", traceId);
  if (scope.workspaceId !== undefined) q = q.where("workspace_id", "=", scope.workspaceId);
  const row = await q.returning("labels").executeTakeFirst();
  return row?.labels;
}

export interface TraceStatsRow {
  total_traces: bigint;
  input_tokens: bigint;
  output_tokens: bigint;
  cache_read_tokens: bigint;
  cache_write_tokens: bigint;
  reasoning_tokens: bigint;
  cost_micros: bigint;
  avg_duration_ms: number;
  error_traces: bigint;
  blocked_traces: bigint;
}

/** Aggregates over the tenant's traces started in [startTime, endTime). Running traces count in totals but not in the mean duration. */
export async function traceStats(db: Executor, scope: TraceScope, filter: Pick<TraceFilter, "startTime" | "endTime" | "workspaceId">): Promise<TraceStatsRow> {
  const sum = (column: keyof TracesTable) => sql<bigint>`coalesce(sum(${sql.ref(column)}), 0)::bigint`;
  const row = await filtered(db.selectFrom("traces"), filterValues(scope, filter))
    .select((eb: ExpressionBuilder<TraceDatabase, "traces">) => [
      eb.fn.countAll<bigint>().as("total_traces"),
      sum("input_tokens").as("input_tokens"),
      sum("output_tokens").as("output_tokens"),
      sum("cache_read_tokens").as("cache_read_tokens"),
      sum("cache_write_tokens").as("cache_write_tokens"),
      sum("reasoning_tokens").as("reasoning_tokens"),
      sum("cost_micros").as("cost_micros"),
      sql<number>`coalesce(avg(duration_ms) filter (where status <> 1), 0)::float8`.as("avg_duration_ms"),
      sql<bigint>`count(*) filter (where status = 3)`.as("error_traces"),
      sql<bigint>`count(*) filter (where status = 4)`.as("blocked_traces"),
    ])
    .executeTakeFirstOrThrow();
  return { ...row, total_traces: BigInt(row.total_traces) };
}
