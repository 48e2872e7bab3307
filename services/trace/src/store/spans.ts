import { sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import { completion, traceStatus, type TraceDelta } from "../ingest/assemble.js";
import type { NormalizedSpan } from "../ingest/normalize.js";
import { column, recordset, textArrayLiteral, type ArrayEncoding } from "./recordset.js";
import type { TraceDatabase, TracesTable } from "./schema.js";
import { encodeSpanPayload } from "./span-payload.js";
import { preparedStatement } from "./statement.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

/** `trace_id/span_id`: the identity of a span within a tenant. */
export function spanIdentity(traceId: string, spanId: string): string {
  return `${traceId}/${spanId}`;
}

const spanColumn = column<NormalizedSpan>();

/** A span row: attributes and events as the payload the query side decodes (store/span-payload.ts). */
const SPAN_ROWS = recordset([
  spanColumn("trace_id", "text", (s) => s.traceId),
  spanColumn("span_id", "text", (s) => s.spanId),
  spanColumn("parent_span_id", "text", (s) => s.parentSpanId),
  spanColumn("name", "text", (s) => s.name),
  spanColumn("kind", "smallint", (s) => s.kind),
  spanColumn("operation", "text", (s) => s.operation),
  spanColumn("start_time", "timestamptz", (s) => s.startMicros),
  spanColumn("end_time", "timestamptz", (s) => s.endMicros),
  spanColumn("status_code", "smallint", (s) => s.statusCode),
  spanColumn("status_message", "text", (s) => s.statusMessage),
  spanColumn("payload", "bytea", encodeSpanPayload),
  spanColumn("service_name", "text", (s) => s.serviceName),
]);

/** The batch as new rows; fails as a whole on the primary key when any of them is already stored. */
const INSERT_NEW_SPANS = preparedStatement(SPAN_ROWS.columns, (db, value) =>
  db.insertInto("spans").columns(SPAN_ROWS.columns).expression(SPAN_ROWS.source(value)),
);

/** The rows of the batch not stored yet; answers the identities of those it inserted. */
const INSERT_MISSING_SPANS = preparedStatement(SPAN_ROWS.columns, (db, value) =>
  db
    .insertInto("spans")
    .columns(SPAN_ROWS.columns)
    .expression(SPAN_ROWS.source(value))
    .onConflict((oc) => oc.columns(["tenant_id", "trace_id", "span_id"]).doNothing())
    .returning(["trace_id", "span_id"]),
);

/**
 * Inserts the spans the tenant does not have yet and answers which of the given spans it inserted;
 * a span already stored (a re-sent batch) is left untouched. Rows go in (trace, span) order so
 * concurrent batches take their locks in the same order. Runs inside the caller's transaction.
 *
 * A batch is nearly always new, so it is first inserted as such, inside a savepoint: that spares
 * ON CONFLICT's speculative insertion (a probe of the primary key before every row, then a
 * confirmation after), about a fifth of the database's CPU per span. When any span of the batch is
 * already stored, that insert fails on the primary key and is rolled back to the savepoint (a
 * concurrent batch holding the same span makes it wait for that batch, as ON CONFLICT would), and
 * the batch goes again with ON CONFLICT DO NOTHING. Nothing is stored twice either way.
 */
export async function insertSpans(
  db: Executor,
  tenantId: string,
  spans: readonly NormalizedSpan[],
  encoding: ArrayEncoding,
): Promise<(span: NormalizedSpan) => boolean> {
  if (spans.length === 0) return () => false;
  const ordered = [...spans].sort((a, b) => compare(a.traceId, b.traceId) || compare(a.spanId, b.spanId));
  const values = SPAN_ROWS.values(tenantId, ordered, encoding);
  await sql`savepoint insert_spans`.execute(db);
  try {
    await INSERT_NEW_SPANS(db, values);
    await sql`release savepoint insert_spans`.execute(db);
    return () => true;
  } catch (err) {
    if (!isStoredSpan(err)) throw err;
  }
  await sql`rollback to savepoint insert_spans`.execute(db);
  const { rows } = await INSERT_MISSING_SPANS(db, values);
  const inserted = new Set(rows.map((row) => spanIdentity(row.trace_id, row.span_id)));
  return (span) => inserted.has(spanIdentity(span.traceId, span.spanId));
}

/** A unique violation of the spans' primary key (SQLSTATE 23505; both drivers set `code`). */
function isStoredSpan(err: unknown): boolean {
  const { code, constraint } = (err ?? {}) as { code?: unknown; constraint?: unknown };
  return code === "23505" && (constraint === undefined || constraint === "spans_pkey");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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

const traceColumn = column<TraceDelta>();
const root = (d: TraceDelta) => d.root?.value;

/** A trace delta's row; merged into an existing row by MERGE_SET. */
const TRACE_ROWS = recordset([
  traceColumn("trace_id", "text", (d) => d.traceId),
  traceColumn("started_at", "timestamptz", (d) => d.startMicros),
  traceColumn("completed_at", "timestamptz", (d) => completion(d).completedMicros),
  traceColumn("duration_ms", "bigint", (d) => BigInt(completion(d).durationMs)),
  traceColumn("status", "smallint", (d) => traceStatus(d)),
  traceColumn("blocked", "boolean", (d) => d.blocked),
  traceColumn("execution_id", "text", (d) => root(d)?.executionId ?? null),
  traceColumn("workspace_id", "text", (d) => root(d)?.workspaceId ?? null),
  traceColumn("environment", "text", (d) => root(d)?.environment ?? null),
  traceColumn("agent_role", "text", (d) => root(d)?.agentRole ?? null),
  traceColumn("user_id", "text", (d) => root(d)?.userId ?? null),
  traceColumn("workspace_version_hash", "text", (d) => root(d)?.workspaceVersionHash ?? null),
  // Canonical JSON text (skillVersionsJson), made jsonb in SQL.
  traceColumn("skill_versions", "text", (d) => root(d)?.skillVersions ?? "{}", "jsonb"),
  traceColumn("input_message", "text", (d) => root(d)?.inputMessage ?? null),
  traceColumn("input_history_count", "integer", (d) => root(d)?.inputHistoryCount ?? null),
  traceColumn("output_message", "text", (d) => root(d)?.outputMessage ?? null),
  traceColumn("task_id", "text", (d) => root(d)?.taskId ?? null),
  traceColumn("document_id", "text", (d) => root(d)?.documentId ?? null),
  traceColumn("message_id", "text", (d) => root(d)?.messageId ?? null),
  traceColumn("source", "text", (d) => root(d)?.source ?? null),
  traceColumn("root_span_key", "text", (d) => d.root?.key ?? null),
  traceColumn("model", "text", (d) => d.model?.value.model ?? null),
  traceColumn("provider", "text", (d) => d.model?.value.provider ?? null),
  traceColumn("model_span_key", "text", (d) => d.model?.key ?? null),
  traceColumn("error_code", "text", (d) => d.error?.value.code ?? null),
  traceColumn("error_message", "text", (d) => d.error?.value.message ?? null),
  traceColumn("error_span_key", "text", (d) => d.error?.key ?? null),
  traceColumn("risk_score", "integer", (d) => d.governance?.value.riskScore ?? null),
  traceColumn("risk_level", "smallint", (d) => d.governance?.value.riskLevel ?? null),
  traceColumn("governance_span_key", "text", (d) => d.governance?.key ?? null),
  traceColumn("decision_id", "text", (d) => d.decision?.value ?? null),
  traceColumn("decision_span_key", "text", (d) => d.decision?.key ?? null),
  traceColumn("input_tokens", "bigint", (d) => d.inputTokens),
  traceColumn("output_tokens", "bigint", (d) => d.outputTokens),
  traceColumn("cache_read_tokens", "bigint", (d) => d.cacheReadTokens),
  traceColumn("cache_write_tokens", "bigint", (d) => d.cacheWriteTokens),
  traceColumn("reasoning_tokens", "bigint", (d) => d.reasoningTokens),
  traceColumn("cost_micros", "bigint", (d) => d.costMicros),
  traceColumn("llm_call_count", "integer", (d) => d.llmCallCount),
  traceColumn("tool_call_count", "integer", (d) => d.toolCallCount),
  traceColumn("span_count", "integer", (d) => d.spanCount),
  // unnest cannot return an array per row, so the list travels as a text[] literal.
  traceColumn("redaction_types", "text", (d) => textArrayLiteral([...d.redactionTypes].sort()), "text[]"),
]);

export interface UpsertedTrace {
  trace_id: string;
  status: number;
  root_span_key: string | null;
}

const UPSERT_TRACES = preparedStatement(TRACE_ROWS.columns, (db, value) =>
  db
    .insertInto("traces")
    .columns(TRACE_ROWS.columns)
    .expression(TRACE_ROWS.source(value))
    .onConflict((oc) => oc.columns(["tenant_id", "trace_id"]).doUpdateSet(MERGE_SET as never))
    .returning(["trace_id", "status", "root_span_key"]),
);

/** Creates or merges the trace rows of the deltas (given in trace id order: the lock order). */
export async function upsertTraceDeltas(db: Executor, tenantId: string, deltas: readonly TraceDelta[], encoding: ArrayEncoding): Promise<UpsertedTrace[]> {
  if (deltas.length === 0) return [];
  return (await UPSERT_TRACES(db, TRACE_ROWS.values(tenantId, deltas, encoding))).rows;
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
