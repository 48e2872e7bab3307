import type { Kysely, Transaction } from "kysely";
import { appendAudit } from "./audit.js";
import type { GovernanceDatabase } from "./schema.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export interface BudgetEvent {
  eventType: "budget_warning" | "budget_exceeded";
  /** Start of the budget period the event belongs to: one event of each type per period. */
  periodStart: Date;
  traceId?: string | undefined;
  data: Record<string, unknown>;
}

/**
 * Records a budget event in the tenant's audit chain, in the caller's transaction when given one.
 * The budget row's marker columns already make the event once per period under concurrency; the
 * idempotency key (type + period start) makes a retried transaction append it once as well.
 */
export async function emitBudgetEvent(db: Executor, tenantId: string, event: BudgetEvent): Promise<void> {
  await appendAudit(db, tenantId, {
    eventType: event.eventType,
    ...(event.traceId ? { traceId: event.traceId } : {}),
    actor: "service:governance",
    data: { ...event.data, period_start: event.periodStart.toISOString() },
    idempotencyKey: `${event.eventType}:${event.periodStart.toISOString()}`,
  });
}
