import type { Kysely, Selectable, Transaction } from "kysely";
import type { SpanEventRow, SpansTable, TraceDatabase } from "./schema.js";
import { decodeSpanPayload } from "./span-payload.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

/** A stored span with its attributes and events decoded, whichever form its row was written in. */
export type SpanRow = Omit<Selectable<SpansTable>, "attributes" | "events" | "payload"> & {
  attributes: Readonly<Record<string, unknown>>;
  events: SpanEventRow[];
};

/**
 * The stored spans of one trace in start order (span id breaks ties, so the order is stable);
 * query/steps.ts turns them into steps. The caller has already checked the trace is in scope.
 * A row carries `payload`, or jsonb attributes and events when it was written before migration
 * 20261127000000_span_payload.
 */
export async function listTraceSpans(db: Executor, tenantId: string, traceId: string): Promise<SpanRow[]> {
  const rows = await db
    .selectFrom("spans")
    .select([
      "tenant_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "operation", "start_time", "end_time",
      "status_code", "status_message", "service_name", "received_at", "payload", "attributes", "events",
    ])
    .where("tenant_id", "=", tenantId)
    .where("trace_id", "=", traceId)
    .orderBy("start_time")
    .orderBy("span_id")
    .execute();
  return rows.map(({ payload, attributes, events, ...row }) =>
    payload !== null ? { ...row, ...decodeSpanPayload(payload) } : { ...row, attributes: attributes ?? {}, events: events ?? [] },
  );
}
