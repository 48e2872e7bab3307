/**
 * The BudgetBatcher as the handlers use it: concurrent callers share batch calls, and each still
 * gets the answer its call would have had in some serial order; a failing batch falls back to
 * lone calls so that every caller gets its own answer or its own error.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql, type Kysely } from "kysely";
import { testBackendFromEnv, useFreshDatabase } from "@clasper/db/testing";
import { BudgetBatcher } from "../src/budget-batcher.js";
import { findBudget, upsertBudget, type ReserveOutcome } from "../src/store/budgets.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { reserveInputs, T0 } from "./budget-support.js";

let db: Kysely<GovernanceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "governance", (database) => {
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
});

const reserveInput = reserveInputs("b");

/** A batcher whose fallback warnings are kept for the test to look at. */
function batcher(options: { maxBatchSize?: number } = {}) {
  const warnings: string[] = [];
  const budgets = new BudgetBatcher(db, { ...options, logger: { warn: (_fields, message) => void warnings.push(message) } });
  return { budgets, warnings };
}

/**
 * The answers of one tenant's concurrent reservations form a serial history: ordered by the
 * `reserved` figure each saw, every reservation saw the sum of those before it, and every denial
 * saw one of those states with too little room left.
 */
function expectSerialHistory(limit: bigint, answers: { amount: bigint; outcome: ReserveOutcome }[]): void {
  const reserved = answers.filter((a) => a.outcome.status === "reserved").sort((a, b) => Number(a.outcome.figures.reservedMicros - b.outcome.figures.reservedMicros));
  let held = 0n;
  const states = new Set<bigint>([0n]);
  for (const { amount, outcome } of reserved) {
    expect(outcome.figures.reservedMicros).toBe(held);
    held += amount;
    expect(held <= limit).toBe(true);
    states.add(held);
  }
  for (const { amount, outcome } of answers.filter((a) => a.outcome.status === "denied")) {
    expect(states.has(outcome.figures.reservedMicros)).toBe(true);
    expect(outcome.figures.reservedMicros + amount > limit).toBe(true);
  }
}

describe(`BudgetBatcher (${testBackendFromEnv()})`, () => {
  it("batches many concurrent reservations over a few tenants: each answer fits a serial order, no budget overspent", async () => {
    const tenants = ["many-a", "many-b", "many-c"];
    const limit = 1_000_000n;
    for (const tenant of tenants) await upsertBudget(db, tenant, { limitMicros: limit }, T0);
    const { budgets, warnings } = batcher({ maxBatchSize: 32 });
    const calls = Array.from({ length: 150 }, (_, i) => {
      const tenantId = tenants[i % tenants.length]!;
      const amount = BigInt(10_000 + ((i * 7919) % 50) * 1_000); // 10k … 59k: about 40 fit per tenant
      return { tenantId, amount, outcome: budgets.reserve(tenantId, reserveInput(amount)) };
    });
    const answers = await Promise.all(calls.map(async (c) => ({ ...c, outcome: await c.outcome })));
    expect(warnings).toEqual([]);
    const counts = budgets.counts();
    expect(counts.batches).toBeGreaterThan(0);
    expect(counts.batchedItems + counts.alone).toBe(150);

    for (const tenant of tenants) {
      const mine = answers.filter((a) => a.tenantId === tenant);
      expect(mine.some((a) => a.outcome.status === "denied")).toBe(true);
      expectSerialHistory(limit, mine);
      const row = await findBudget(db, tenant, T0);
      const held = mine.filter((a) => a.outcome.status === "reserved").reduce((sum, a) => sum + a.amount, 0n);
      expect(row?.reserved_micros).toBe(held);
      expect(row!.spent_micros + row!.reserved_micros <= row!.limit_micros).toBe(true);
    }
  });

  it("answers a repeated execution and a repeated settlement within one batch as one by one", async () => {
    await upsertBudget(db, "repeat", { limitMicros: 1_000_000n }, T0);
    const { budgets, warnings } = batcher();
    const input = reserveInput(400_000n);
    const [first, second] = await Promise.all([budgets.reserve("repeat", input), budgets.reserve("repeat", input)]);
    expect([first.status, second.status].sort()).toEqual(["existing", "reserved"]);
    if (first.status === "denied" || second.status === "denied") throw new Error("denied");
    expect(second.reservation.reservation_id).toBe(first.reservation.reservation_id);
    expect((await findBudget(db, "repeat", T0))?.reserved_micros).toBe(400_000n);

    const settle = (actualMicros: bigint) => budgets.settle("repeat", { reservationId: first.reservation.reservation_id, actualMicros, now: T0 });
    const [a, b] = await Promise.all([settle(300_000n), settle(1n)]);
    expect([a.status, b.status]).toEqual(["settled", "already_settled"]);
    if (!("settlement" in a) || !("settlement" in b)) throw new Error("no settlement");
    expect(b.settlement).toEqual(a.settlement);
    expect(await budgets.release("repeat", first.reservation.reservation_id, "late", T0)).toMatchObject({ status: "closed" });
    expect(await findBudget(db, "repeat", T0)).toMatchObject({ spent_micros: 300_000n, reserved_micros: 0n });
    expect(warnings).toEqual([]);
    expect(budgets.counts()).toMatchObject({ batches: 2, batchedItems: 4 });
  });

  it("gives each caller its own error when one item breaks the batch, and the others their answers", async () => {
    await upsertBudget(db, "broken", { limitMicros: 1_000_000n }, T0);
    const { budgets, warnings } = batcher();
    const results = await Promise.allSettled([
      budgets.reserve("broken", reserveInput(100_000n)),
      budgets.reserve("broken", reserveInput(-1n)),
      budgets.reserve("other", reserveInput(5n)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(results[0]).toMatchObject({ value: { status: "reserved" } });
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/amount_micros/);
    expect(results[2]).toMatchObject({ value: { status: "reserved" } });
    expect(warnings).toEqual(["budget batch failed; running its operations one by one"]);
    expect(budgets.counts()).toMatchObject({ batches: 1, failedBatches: 1 });
    expect((await findBudget(db, "broken", T0))?.reserved_micros).toBe(100_000n);
  });

  it("falls back to lone calls when the batch function itself fails", async () => {
    await upsertBudget(db, "fallback", { limitMicros: 1_000_000n }, T0);
    const { budgets, warnings } = batcher();
    const schema = sql.id(GOVERNANCE_SCHEMA);
    const signature = sql.raw(
      "(text[], text[], text[], timestamptz[], text[], text[], int8[], timestamptz[], text[], text[], text[], int8[], text[], timestamptz[], timestamptz[], int8[], boolean[], text[], float8[])",
    );
    await sql`alter function ${schema}.budget_batch${signature} rename to budget_batch_away`.execute(db);
    try {
      const outcomes = await Promise.all([600_000n, 300_000n, 200_000n].map((amount) => budgets.reserve("fallback", reserveInput(amount))));
      expect(outcomes.map((o) => o.status).sort()).toEqual(["denied", "reserved", "reserved"]);
    } finally {
      await sql`alter function ${schema}.budget_batch_away${signature} rename to budget_batch`.execute(db);
    }
    expect(warnings).toEqual(["budget batch failed; running its operations one by one"]);
    const row = await findBudget(db, "fallback", T0);
    expect(row!.reserved_micros <= row!.limit_micros).toBe(true);
    expect(row?.reserved_micros).not.toBe(0n);
  });
});
