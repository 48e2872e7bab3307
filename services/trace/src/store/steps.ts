import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { SpanEventRow, SpansTable, TraceDatabase } from "./schema.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

/** A stored span with its attributes and events parsed, whichever format its row was written in. */
export type SpanRow = Omit<Selectable<SpansTable>, "attributes" | "events" | "attributes_json" | "events_json"> & {
  attributes: Record<string, unknown>;
  events: SpanEventRow[];
};

/**
 * The stored spans of one trace in start order (span id breaks ties, so the order is stable);
 * query/steps.ts turns them into steps. The caller has already checked the trace is in scope.
 * Rows carry their payload as JSON text, or as jsonb when written before migration
 * 20261127000000_span_payload_text; jsonb is read as its text, so both parse the same way.
 */
export async function listTraceSpans(db: Executor, tenantId: string, traceId: string): Promise<SpanRow[]> {
  const rows = await db
    .selectFrom("spans")
    .select([
      "tenant_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "operation", "start_time", "end_time",
      "status_code", "status_message", "service_name", "received_at",
      sql<string>`coalesce(attributes_json, attributes::text)`.as("attributes"),
      sql<string>`coalesce(events_json, events::text)`.as("events"),
    ])
    .where("tenant_id", "=", tenantId)
    .where("trace_id", "=", traceId)
    .orderBy("start_time")
    .orderBy("span_id")
    .execute();
  return rows.map((row) => ({
    ...row,
    attributes: JSON.parse(row.attributes) as Record<string, unknown>,
    events: JSON.parse(row.events) as SpanEventRow[],
  }));
}
