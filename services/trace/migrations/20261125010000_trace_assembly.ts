import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// What span ingest needs beyond the first schema (services/trace/src/ingest/assemble.ts):
// - the trace's input and output message (redacted) and history count, read from the
//   invoke_agent span;
// - "pick keys": several fields of a trace come from ONE chosen span (the execution span, the
//   first governance decision, the first error, ...). Spans arrive in any order and in several
//   batches, so each group stores the key of the span that supplied it — the span's start time
//   (µs, zero-padded) followed by its span id — and a later batch replaces the group only with a
//   smaller key. Whatever the arrival order, the same span wins, so the summary converges;
// - `blocked`, OR-ed over spans, so the status can be recomputed in the upsert;
// - `sampled_out_traces`: traces the sampling strategy dropped when they completed, so spans of
//   them that arrive later (or are re-sent) are dropped too instead of re-creating a partial trace.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("traces")
    .addColumn("input_message", "text")
    .addColumn("input_history_count", "integer")
    .addColumn("output_message", "text")
    .addColumn("blocked", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("root_span_key", "text")
    .addColumn("model_span_key", "text")
    .addColumn("error_span_key", "text")
    .addColumn("governance_span_key", "text")
    .addColumn("decision_span_key", "text")
    .execute();

  await db.schema
    .createTable("sampled_out_traces")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("trace_id", "text", (c) => c.notNull())
    .addColumn("decided_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("sampled_out_traces_pkey", ["tenant_id", "trace_id"])
    .execute();
  await db.schema.createIndex("sampled_out_traces_decided").on("sampled_out_traces").columns(["decided_at"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("sampled_out_traces").execute();
  await db.schema
    .alterTable("traces")
    .dropColumn("input_message")
    .dropColumn("input_history_count")
    .dropColumn("output_message")
    .dropColumn("blocked")
    .dropColumn("root_span_key")
    .dropColumn("model_span_key")
    .dropColumn("error_span_key")
    .dropColumn("governance_span_key")
    .dropColumn("decision_span_key")
    .execute();
}
