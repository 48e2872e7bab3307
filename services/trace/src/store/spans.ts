import { sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import { completion, traceStatus, type TraceDelta } from "../ingest/assemble.js";
import { isoMicros, type NormalizedSpan } from "../ingest/normalize.js";
import type { TraceDatabase, TracesTable } from "./schema.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

/*
 * Both writes of a batch send their rows as ONE jsonb parameter read with `jsonb_to_recordset`,
 * rather than a bind parameter per column and row (13 per span, 44 per trace): nothing to build,
 * send and parse per value on either side, and one statement per batch whatever its size.
 * jsonb, not json: PostgreSQL parses the document once, and the attributes and events columns
 * are then copied out of it; `json_to_recordset` re-parses every jsonb column's text (about twice
 * the database CPU per span).
 */

/** A column of a recordset: name, SQL type, and the select expression when not `r.<name>`. */
type Column<Name extends string> = readonly [name: Name, type: string, read?: string];

/**
 * The rows of a table (after tenant_id) read from one jsonb array parameter: the column names
 * for `insertInto(...).columns(...)`, and `select <tenant>, r.... from jsonb_to_recordset(...)`.
 */
function recordset<Name extends string>(columns: readonly Column<Name>[]) {
  const select = sql.raw(columns.map(([name, , read]) => read ?? `r.${name}`).join(", "));
  const record = sql.raw(`r(${columns.map(([name, type]) => `${name} ${type}`).join(", ")})`);
  return {
    columns: ["tenant_id" as const, ...columns.map(([name]) => name)],
    rows: (tenantId: string, rowsJson: string): RawBuilder<unknown> =>
      sql`select ${tenantId}, ${select} from jsonb_to_recordset(${rowsJson}::jsonb) as ${record}`,
  };
}

/** One element of the array a recordset reads: every column but tenant_id, no other key. */
type RecordOf<R extends { columns: readonly string[] }> = Record<Exclude<R["columns"][number], "tenant_id">, unknown>;

/** `trace_id/span_id`: the identity of a span within a tenant. */
export function spanIdentity(traceId: string, spanId: string): string {
  return `${traceId}/${spanId}`;
}

const SPAN_ROWS = recordset([
  ["trace_id", "text"], ["span_id", "text"], ["parent_span_id", "text"], ["name", "text"], ["kind", "smallint"],
  ["operation", "text"], ["start_time", "timestamptz"], ["end_time", "timestamptz"], ["status_code", "smallint"],
  ["status_message", "text"], ["attributes", "jsonb"], ["events", "jsonb"], ["service_name", "text"],
] as const);

/** A span as one element of the jsonb array SPAN_ROWS reads. */
function spanRecord(span: NormalizedSpan): RecordOf<typeof SPAN_ROWS> {
  return {
    trace_id: span.traceId,
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    operation: span.operation,
    start_time: span.startTime,
    end_time: span.endTime,
    status_code: span.statusCode,
    status_message: span.statusMessage,
    attributes: span.attributes,
    events: span.events,
    service_name: span.serviceName,
  };
}

/**
 * Inserts the spans the tenant does not have yet and returns the identities of those inserted;
 * a span already stored (a re-sent batch) is left untouched. Rows go in (trace, span) order so
 * concurrent batches take their locks in the same order. The statement answers one row: how many
 * were inserted and, only when that is not all of them, which. Sending back the identity of every
 * new span (hundreds of rows per batch) cost both sides more than the rare re-sent batch saves.
 */
export async function insertSpans(db: Executor, tenantId: string, spans: readonly NormalizedSpan[]): Promise<Set<string>> {
  if (spans.length === 0) return new Set();
  const ordered = [...spans].sort((a, b) => compare(a.traceId, b.traceId) || compare(a.spanId, b.spanId));
  const result = await db
    .with("inserted", (qb) =>
      qb
        .insertInto("spans")
        .columns(SPAN_ROWS.columns)
        .expression(SPAN_ROWS.rows(tenantId, JSON.stringify(ordered.map(spanRecord))))
        .onConflict((oc) => oc.columns(["tenant_id", "trace_id", "span_id"]).doNothing())
        .returning(["trace_id", "span_id"]),
    )
    .selectFrom("inserted")
    .select([
      sql<string>`count(*)`.as("count"),
      sql<string[] | null>`case when count(*) < ${ordered.length} then array_agg(trace_id || '/' || span_id) end`.as("identities"),
    ])
    .executeTakeFirstOrThrow();
  if (Number(result.count) === ordered.length) return new Set(ordered.map((span) => spanIdentity(span.traceId, span.spanId)));
  return new Set(result.identities ?? []);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A trace delta as one element of the jsonb array TRACE_ROWS reads; int8 as strings. */
function traceRecord(delta: TraceDelta): RecordOf<typeof TRACE_ROWS> {
  const root = delta.root?.value;
  const { completedAt, durationMs } = completion(delta);
  return {
    trace_id: delta.traceId,
    started_at: isoMicros(delta.startMicros),
    completed_at: completedAt,
    duration_ms: durationMs,
    status: traceStatus(delta),
    blocked: delta.blocked,
    execution_id: root?.executionId ?? null,
    workspace_id: root?.workspaceId ?? null,
    environment: root?.environment ?? null,
    agent_role: root?.agentRole ?? null,
    user_id: root?.userId ?? null,
    workspace_version_hash: root?.workspaceVersionHash ?? null,
    skill_versions: root?.skillVersions ?? "{}",
    input_message: root?.inputMessage ?? null,
    input_history_count: root?.inputHistoryCount ?? null,
    output_message: root?.outputMessage ?? null,
    task_id: root?.taskId ?? null,
    document_id: root?.documentId ?? null,
    message_id: root?.messageId ?? null,
    source: root?.source ?? null,
    root_span_key: delta.root?.key ?? null,
    model: delta.model?.value.model ?? null,
    provider: delta.model?.value.provider ?? null,
    model_span_key: delta.model?.key ?? null,
    error_code: delta.error?.value.code ?? null,
    error_message: delta.error?.value.message ?? null,
    error_span_key: delta.error?.key ?? null,
    risk_score: delta.governance?.value.riskScore ?? null,
    risk_level: delta.governance?.value.riskLevel ?? null,
    governance_span_key: delta.governance?.key ?? null,
    decision_id: delta.decision?.value ?? null,
    decision_span_key: delta.decision?.key ?? null,
    input_tokens: String(delta.inputTokens),
    output_tokens: String(delta.outputTokens),
    cache_read_tokens: String(delta.cacheReadTokens),
    cache_write_tokens: String(delta.cacheWriteTokens),
    reasoning_tokens: String(delta.reasoningTokens),
    cost_micros: String(delta.costMicros),
    llm_call_count: delta.llmCallCount,
    tool_call_count: delta.toolCallCount,
    span_count: delta.spanCount,
    redaction_types: [...delta.redactionTypes].sort(),
  };
}

/*
 * The merge of a delta into an existing trace row: the SQL twin of ingest/assemble.ts `fold`.
 * Every expression reads the row as it was before this statement (`traces.*`) and the delta
 * (`excluded.*`), so the order of the SET items does not matter, and the row lock the upsert
 * takes serializes concurrent batches of one trace without losing either's contribution.
 */
const T = (column: string) => `traces.${column}`;
const E = (column: string) => `excluded.${column}`;

/**
 * The delta's span beats the stored one for this group: a smaller pick key in byte order ("C").
 * Keys start with a digit, so "~" stands for "none stored"; a null delta key compares to null
 * and never wins.
 */
function wins(key: string): string {
  return `(${E(key)} collate "C" < coalesce(${T(key)}, '~') collate "C")`;
}

const PICK_GROUPS: Readonly<Record<string, readonly (keyof TracesTable)[]>> = {
  root_span_key: [
    "execution_id", "workspace_id", "environment", "agent_role", "user_id", "workspace_version_hash", "skill_versions",
    "input_message", "input_history_count", "output_message", "task_id", "document_id", "message_id", "source",
  ],
  model_span_key: ["model", "provider"],
  error_span_key: ["error_code", "error_message"],
  governance_span_key: ["risk_score", "risk_level"],
  decision_span_key: ["decision_id"],
};

const SUMS: readonly (keyof TracesTable)[] = [
  "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
  "cost_micros", "llm_call_count", "tool_call_count", "span_count",
];

const MERGED_START = "least(traces.started_at, excluded.started_at)";
const MERGED_END = "greatest(traces.completed_at, excluded.completed_at)";
const ROOT_WINS = wins("root_span_key");
const ROOT_KNOWN = "traces.root_span_key is not null";

function mergeSet(): Record<string, RawBuilder<unknown>> {
  const set: Record<string, string> = {};
  for (const [key, columns] of Object.entries(PICK_GROUPS)) {
    for (const column of [...columns, key]) set[column] = `case when ${wins(key)} then ${E(column)} else ${T(column)} end`;
  }
  for (const column of SUMS) set[column] = `${T(column)} + ${E(column)}`;
  set["started_at"] = MERGED_START;
  set["blocked"] = "traces.blocked or excluded.blocked";
  // The invoke_agent span's end and duration once known; before that the latest end seen.
  set["completed_at"] = `case when ${ROOT_WINS} then excluded.completed_at when ${ROOT_KNOWN} then traces.completed_at else ${MERGED_END} end`;
  set["duration_ms"] =
    `case when ${ROOT_WINS} then excluded.duration_ms when ${ROOT_KNOWN} then traces.duration_ms ` +
    `else floor(extract(epoch from (${MERGED_END} - ${MERGED_START})) * 1000)::bigint end`;
  // traceStatus(): running until the invoke_agent span is in, then blocked > error > success.
  set["status"] =
    "case when coalesce(traces.root_span_key, excluded.root_span_key) is null then 1 " +
    "when traces.blocked or excluded.blocked then 4 " +
    "when coalesce(traces.error_span_key, excluded.error_span_key) is not null then 3 else 2 end";
  set["redaction_types"] =
    'array(select t from (select distinct t from unnest(traces.redaction_types || excluded.redaction_types) as u(t)) d order by t collate "C")';
  set["updated_at"] = "now()";
  return Object.fromEntries(Object.entries(set).map(([column, expression]) => [column, sql.raw(expression)]));
}

const MERGE_SET = mergeSet();

const TRACE_ROWS = recordset([
  ["trace_id", "text"], ["started_at", "timestamptz"], ["completed_at", "timestamptz"], ["duration_ms", "bigint"],
  ["status", "smallint"], ["blocked", "boolean"], ["execution_id", "text"], ["workspace_id", "text"],
  ["environment", "text"], ["agent_role", "text"], ["user_id", "text"], ["workspace_version_hash", "text"],
  // Canonical JSON text (skillVersionsJson); a jsonb field would store it as a string scalar.
  ["skill_versions", "text", "r.skill_versions::jsonb"],
  ["input_message", "text"], ["input_history_count", "integer"], ["output_message", "text"], ["task_id", "text"],
  ["document_id", "text"], ["message_id", "text"], ["source", "text"], ["root_span_key", "text"], ["model", "text"],
  ["provider", "text"], ["model_span_key", "text"], ["error_code", "text"], ["error_message", "text"],
  ["error_span_key", "text"], ["risk_score", "integer"], ["risk_level", "smallint"], ["governance_span_key", "text"],
  ["decision_id", "text"], ["decision_span_key", "text"], ["input_tokens", "bigint"], ["output_tokens", "bigint"],
  ["cache_read_tokens", "bigint"], ["cache_write_tokens", "bigint"], ["reasoning_tokens", "bigint"],
  ["cost_micros", "bigint"], ["llm_call_count", "integer"], ["tool_call_count", "integer"], ["span_count", "integer"],
  ["redaction_types", "text[]"],
] as const);

export interface UpsertedTrace {
  trace_id: string;
  status: number;
  root_span_key: string | null;
}

/** Creates or merges the trace rows of the deltas (given in trace id order: the lock order). */
export async function upsertTraceDeltas(db: Executor, tenantId: string, deltas: readonly TraceDelta[]): Promise<UpsertedTrace[]> {
  if (deltas.length === 0) return [];
  return db
    .insertInto("traces")
    .columns(TRACE_ROWS.columns)
    .expression(TRACE_ROWS.rows(tenantId, JSON.stringify(deltas.map(traceRecord))))
    .onConflict((oc) => oc.columns(["tenant_id", "trace_id"]).doUpdateSet(MERGE_SET as never))
    .returning(["trace_id", "status", "root_span_key"])
    .execute();
}

/** Of these trace ids, those the sampling strategy already dropped for the tenant. */
export async function findSampledOutTraces(db: Executor, tenantId: string, traceIds: readonly string[]): Promise<Set<string>> {
  if (traceIds.length === 0) return new Set();
  const rows = await db
    .selectFrom("sampled_out_traces")
    .select("trace_id")
    .where("tenant_id", "=", tenantId)
    .where("trace_id", "in", traceIds)
    .execute();
  return new Set(rows.map((row) => row.trace_id));
}

/** Deletes the traces' spans and summaries and records them as sampled out. */
export async function dropSampledOutTraces(db: Executor, tenantId: string, traceIds: readonly string[]): Promise<void> {
  if (traceIds.length === 0) return;
  await db.deleteFrom("spans").where("tenant_id", "=", tenantId).where("trace_id", "in", traceIds).execute();
  await db.deleteFrom("traces").where("tenant_id", "=", tenantId).where("trace_id", "in", traceIds).execute();
  await db
    .insertInto("sampled_out_traces")
    .values(traceIds.map((trace_id) => ({ tenant_id: tenantId, trace_id })))
    .onConflict((oc) => oc.columns(["tenant_id", "trace_id"]).doNothing())
    .execute();
}
