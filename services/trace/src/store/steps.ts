import type { Kysely, Selectable, Transaction } from "kysely";
import type { SpansTable, TraceDatabase } from "./schema.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

export type SpanRow = Selectable<SpansTable>;

/**
 * The stored spans of one trace in start order (span id breaks ties, so the order is stable);
 * query/steps.ts turns them into steps. The caller has already checked the trace is in scope.
 */
export async function listTraceSpans(db: Executor, tenantId: string, traceId: string): Promise<SpanRow[]> {
  return db
    .selectFrom("spans")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("trace_id", "=", traceId)
    .orderBy("start_time")
    .orderBy("span_id")
    .execute();
}
