/**
 * The budget functions run on generic plans, made once per session (migration 20261126000000).
 * A session that plans while budget_reservations is small must still look reservations up by key
 * once the table is large: this connection plans every budget statement against a few dozen
 * rows, the table then grows by thousands of one tenant's reservations, and every later call on
 * the same connection may read only a handful of rows (pg_stat_xact_user_tables, this
 * transaction's counters). Before 20261128000000 the settle batch read all 3,000.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql, type Kysely, type Transaction } from "kysely";
import { useFreshDatabase } from "@clasper/db/testing";
import { applyBudgetBatch, type BudgetOperation } from "../src/store/budget-batches.js";
import { findReservationByExecution, releaseBudget, reserveBudget, settleBudget, upsertBudget } from "../src/store/budgets.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { reserveInputs, T0 } from "./budget-support.js";

let db: Kysely<GovernanceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "governance", (database) => {
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
});

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

const TENANTS = ["plan-a", "plan-b", "plan-c", "plan-d"] as const;
const GROWTH = 3000;

/** Rows of budget_reservations this transaction has read so far (index fetches and sequential reads). */
async function rowsRead(exec: Executor): Promise<number> {
  const { rows } = await sql<{ n: string | number | null }>`
    select coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) as n
    from pg_stat_xact_user_tables where relname = 'budget_reservations' and schemaname = ${GOVERNANCE_SCHEMA}`.execute(exec);
  return Number(rows[0]?.n ?? 0);
}

async function answers(exec: Executor, operations: BudgetOperation[]) {
  return Promise.all(await applyBudgetBatch(exec as Kysely<GovernanceDatabase>, operations));
}

describe("budget statements planned on a small table", () => {
  it("keep reading reservations by key after the table grows", async () => {
    await db.connection().execute(async (conn) => {
      const input = reserveInputs("plan");
      for (const tenant of TENANTS) await upsertBudget(conn, tenant, { limitMicros: 10n ** 15n, hardLimit: true, period: "monthly" }, T0);

      // Every kind of call once, batched and alone, while the table holds a few dozen rows.
      const early = await answers(conn, TENANTS.flatMap((tenantId) => [1, 2, 3].map(() => ({ kind: "reserve" as const, tenantId, input: input(10n) }))));
      const ids = early.map((a) => (a.kind === "reserve" && a.outcome.status === "reserved" ? a.outcome.reservation.reservation_id : ""));
      await answers(conn, [
        { kind: "settle", tenantId: "plan-a", input: { reservationId: ids[0]!, actualMicros: 5n, now: T0 } },
        { kind: "settle", tenantId: "plan-b", input: { reservationId: ids[3]!, actualMicros: 5n, now: T0 } },
        { kind: "release", tenantId: "plan-c", reservationId: ids[6]!, reason: "cancelled", now: T0 },
        { kind: "release", tenantId: "plan-d", reservationId: ids[9]!, reason: "cancelled", now: T0 },
      ]);
      await settleBudget(conn, "plan-a", { reservationId: ids[1]!, actualMicros: 5n, now: T0 });
      await releaseBudget(conn, "plan-b", ids[4]!, "cancelled", T0);
      await reserveBudget(conn, "plan-c", input(10n));

      // One tenant grows by thousands of reservations (written straight in: only their number matters here).
      const expiresAt = new Date(T0.getTime() + 3_600_000);
      const grown = Array.from({ length: GROWTH }, (_, i) => ({
        tenant_id: "plan-a",
        reservation_id: `grown-${i}`,
        execution_id: `grown-execution-${i}`,
        amount_micros: 1n,
        status: "open",
        created_at: T0,
        expires_at: expiresAt,
      }));
      await conn.insertInto("budget_reservations").values(grown).execute();
      await conn.updateTable("budgets").set((eb) => ({ reserved_micros: eb("reserved_micros", "+", BigInt(GROWTH)) })).where("tenant_id", "=", "plan-a").execute();

      await conn.transaction().execute(async (trx) => {
        const reads: Record<string, number> = {};
        const measure = async (label: string, call: () => Promise<unknown>) => {
          const before = await rowsRead(trx);
          await call();
          reads[label] = (await rowsRead(trx)) - before;
        };
        await measure("settle batch", () =>
          answers(trx, [
            { kind: "settle", tenantId: "plan-a", input: { reservationId: "grown-10", actualMicros: 1n, now: T0 } },
            { kind: "settle", tenantId: "plan-a", input: { reservationId: "grown-11", actualMicros: 1n, now: T0 } },
          ]),
        );
        await measure("release batch", () =>
          answers(trx, [
            { kind: "release", tenantId: "plan-a", reservationId: "grown-12", reason: "cancelled", now: T0 },
            { kind: "release", tenantId: "plan-a", reservationId: "grown-13", reason: "cancelled", now: T0 },
          ]),
        );
        await measure("settle", () => settleBudget(trx, "plan-a", { reservationId: "grown-14", actualMicros: 1n, now: T0 }));
        await measure("release", () => releaseBudget(trx, "plan-a", "grown-15", "cancelled", T0));
        await measure("reserve batch, known executions", () =>
          answers(trx, [
            { kind: "reserve", tenantId: "plan-a", input: { ...input(1n), executionId: "grown-execution-16" } },
            { kind: "reserve", tenantId: "plan-a", input: { ...input(1n), executionId: "grown-execution-17" } },
          ]),
        );
        await measure("reservation by execution", () => findReservationByExecution(trx, "plan-a", "grown-execution-18"));
        // Each call reads its own few rows (the reservation, its neighbours on the way), never the tenant's thousands.
        expect(Object.entries(reads).filter(([, read]) => read > 12)).toEqual([]);
        expect(Object.keys(reads)).toHaveLength(6);
      });
    });
  });
});
