// TEST-ONLY: the check-then-record pattern of LLM gateways that overspend hard budgets (read the
// spend, decide in the application, then write). It exists to prove the race test can fail: run
// through the same two-process harness it lets more than the budget through. Never use it.
import { uuidv7 } from "@clasper/core";

export async function naiveReserve(db, tenantId, executionId, amount, now) {
  const budget = await db.selectFrom("budgets").select(["limit_micros", "spent_micros", "reserved_micros", "hard_limit"]).where("tenant_id", "=", tenantId).executeTakeFirstOrThrow();
  if (budget.hard_limit && budget.spent_micros + budget.reserved_micros + amount > budget.limit_micros) return undefined;
  const reservationId = uuidv7();
  await db
    .updateTable("budgets")
    .set((eb) => ({ reserved_micros: eb("reserved_micros", "+", amount.toString()) }))
    .where("tenant_id", "=", tenantId)
    .execute();
  await db
    .insertInto("budget_reservations")
    .values({ tenant_id: tenantId, reservation_id: reservationId, execution_id: executionId, amount_micros: amount.toString(), status: "open", created_at: now, expires_at: new Date(now.getTime() + 900_000) })
    .execute();
  return reservationId;
}
