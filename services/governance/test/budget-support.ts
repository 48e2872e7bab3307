import type { Kysely } from "kysely";
import { DEFAULT_BUDGET } from "../src/budget-check.js";
import type { ReserveInput } from "../src/store/budgets.js";
import type { GovernanceDatabase } from "../src/store/schema.js";

/** The budget tests' clock: a Tuesday in March 2026, UTC. */
export const T0 = new Date("2026-03-10T12:00:00Z");

/** A reserve input for a new execution (`<prefix>-1`, `<prefix>-2`, …) at T0 against the default budget. */
export function reserveInputs(prefix: string): (amount: bigint, extra?: Partial<ReserveInput>) => ReserveInput {
  let executions = 0;
  return (amount, extra = {}) => ({ executionId: `${prefix}-${++executions}`, amountMicros: amount, defaults: DEFAULT_BUDGET, now: T0, ...extra });
}

/** A tenant's audit entries of one type, their data. */
export async function auditData(db: Kysely<GovernanceDatabase>, tenantId: string, eventType: string): Promise<Record<string, unknown>[]> {
  const rows = await db.selectFrom("audit_log").select("data").where("tenant_id", "=", tenantId).where("event_type", "=", eventType).execute();
  return rows.map((r) => r.data);
}
