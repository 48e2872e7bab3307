/**
 * The batch call (store/budget-batches.ts, migrations 20261127000000 and 20261127010000) against
 * the single-item functions: every batch below runs on one tenant while the same operations run
 * one by one, in batch order, on a twin tenant with the same budget; the answers must be the same
 * (ids aside), and so must the budgets and the audit events afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql, type Kysely, type Transaction } from "kysely";
import { withTransaction } from "@clasper/db";
import { testBackendFromEnv, useFreshDatabase } from "@clasper/db/testing";
import { applyBudgetBatch, type BudgetOperation, type BudgetOperationOutcome } from "../src/store/budget-batches.js";
import {
  findBudget,
  findReservation,
  releaseBudget,
  releaseExpiredReservations,
  reserveBudget,
  settleBudget,
  upsertBudget,
  type BudgetChange,
  type ReleaseOutcome,
  type ReserveInput,
  type ReserveOutcome,
  type SettleInput,
  type SettleOutcome,
} from "../src/store/budgets.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { auditData, reserveInputs, T0 } from "./budget-support.js";

let db: Kysely<GovernanceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "governance", (database) => {
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
});

const reserveInput = reserveInputs("x");

type Executor = Kysely<GovernanceDatabase>;
type ReserveItem = { tenantId: string; input: ReserveInput };
type SettleItem = { tenantId: string; input: SettleInput };
type ReleaseItem = { tenantId: string; reservationId: string; reason: string; now: Date };

/** Every answer of one batch call, each of `kind` (the helpers below send one kind at a time). */
async function batch<K extends BudgetOperation["kind"]>(executor: Executor, kind: K, operations: BudgetOperation[]) {
  const answers = await Promise.all(await applyBudgetBatch(executor, operations));
  return answers.map((answer) => {
    if (answer.kind !== kind) throw new Error(`${kind} answered as ${answer.kind}`);
    return answer as Extract<BudgetOperationOutcome, { kind: K }>;
  });
}
const reserveBatch = async (executor: Executor, items: ReserveItem[]): Promise<ReserveOutcome[]> =>
  (await batch(executor, "reserve", items.map((i) => ({ kind: "reserve", ...i })))).map((a) => a.outcome);
const settleBatch = async (executor: Executor, items: SettleItem[]): Promise<SettleOutcome[]> =>
  (await batch(executor, "settle", items.map((i) => ({ kind: "settle", ...i })))).map((a) => a.outcome);
const releaseBatch = async (executor: Executor, items: ReleaseItem[]): Promise<ReleaseOutcome[]> =>
  (await batch(executor, "release", items.map((i) => ({ kind: "release", ...i })))).map((a) => a.outcome);

/** An outcome without what differs between twins (ids, the tenant). */
function comparable(outcome: ReserveOutcome | SettleOutcome | ReleaseOutcome): unknown {
  if (!("reservation" in outcome)) return outcome;
  const { tenant_id: _t, reservation_id: _r, execution_id: _e, ...reservation } = outcome.reservation;
  return { ...outcome, reservation };
}

const events = (tenantId: string, eventType: string) => auditData(db, tenantId, eventType);

/** Budget figures that must agree between twins. */
async function figures(tenantId: string, now = T0) {
  const row = await findBudget(db, tenantId, now);
  if (!row) return undefined;
  const { tenant_id: _t, created_at: _c, updated_at: _u, ...rest } = row;
  return rest;
}

/** Two tenants with the same budget: `batched` takes batches, `serial` the same calls one by one. */
async function twins(name: string, change: BudgetChange, now = T0): Promise<{ batched: string; serial: string }> {
  const twin = { batched: `${name}-batched`, serial: `${name}-serial` };
  await upsertBudget(db, twin.batched, change, now);
  await upsertBudget(db, twin.serial, change, now);
  return twin;
}

/** Reserves `inputs` as one batch on one twin and one by one on the other; returns both answers. */
async function reserveBoth(twin: { batched: string; serial: string }, inputs: ReserveInput[]) {
  const batched = await reserveBatch(db, inputs.map((input) => ({ tenantId: twin.batched, input })));
  const serial: ReserveOutcome[] = [];
  for (const input of inputs) serial.push(await reserveBudget(db, twin.serial, input));
  return { batched, serial };
}

/** Budget row updates counted by the statistics of the session running `trx` (not yet flushed ones included). */
async function budgetRowUpdates(trx: Transaction<GovernanceDatabase>): Promise<number> {
  const { rows } = await sql<{ updates: string }>`
    select n_tup_upd::text as updates from pg_stat_xact_user_tables where schemaname = ${GOVERNANCE_SCHEMA} and relname = 'budgets'`.execute(trx);
  return Number(rows[0]?.updates);
}

function reservationIds(outcomes: ReserveOutcome[]): string[] {
  return outcomes.map((o) => {
    if (o.status === "denied") throw new Error("denied");
    return o.reservation.reservation_id;
  });
}

describe(`budget batch functions (${testBackendFromEnv()})`, () => {
  it("reserves a batch exactly as one by one in batch order, denying what no longer fits", async () => {
    const twin = await twins("fits", { limitMicros: 1_000_000n, alertThreshold: 0.5 });
    const amounts = [300_000n, 250_000n, 400_000n, 100_000n, 500_000n, 50_000n, 0n];
    const { batched, serial } = await reserveBoth(twin, amounts.map((a) => reserveInput(a)));
    expect(batched.map((o) => o.status)).toEqual(["reserved", "reserved", "reserved", "denied", "denied", "reserved", "reserved"]);
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    expect(await figures(twin.batched)).toEqual(await figures(twin.serial));
    expect((await findBudget(db, twin.batched, T0))?.reserved_micros).toBe(1_000_000n);
    // The denials reported the full budget once, as one by one did.
    expect(await events(twin.batched, "budget_exceeded")).toHaveLength(1);
    expect(await events(twin.serial, "budget_exceeded")).toHaveLength(1);
  });

  it("applies a batch that fits as one set, each item's figures counting the earlier holds", async () => {
    const twin = await twins("set", { limitMicros: 10_000_000n });
    const inputs = [1n, 2n, 3n, 4n].map((n) => reserveInput(n * 100_000n));
    // In a transaction of the test's, only to count the writes: ONE update of the budget row.
    const batched = await withTransaction(db, async (trx) => {
      const before = await budgetRowUpdates(trx);
      const outcomes = await reserveBatch(trx, inputs.map((input) => ({ tenantId: twin.batched, input })));
      expect((await budgetRowUpdates(trx)) - before).toBe(1);
      return outcomes;
    });
    const serial: ReserveOutcome[] = [];
    for (const input of inputs) serial.push(await reserveBudget(db, twin.serial, input));
    expect(batched.map((o) => o.status)).toEqual(["reserved", "reserved", "reserved", "reserved"]);
    expect(batched.map((o) => o.figures.reservedMicros)).toEqual([0n, 100_000n, 300_000n, 600_000n]);
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    expect(await figures(twin.batched)).toEqual(await figures(twin.serial));
  });

  it("answers a repeated execution id in one batch with the first reservation (existing)", async () => {
    const twin = await twins("repeat", { limitMicros: 1_000_000n });
    const first = reserveInput(200_000n, { executionId: "same" });
    const { batched, serial } = await reserveBoth(twin, [first, reserveInput(300_000n), { ...first, amountMicros: 700_000n }]);
    expect(batched.map((o) => o.status)).toEqual(["reserved", "reserved", "existing"]);
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    const [a, , again] = reservationIds(batched);
    expect(again).toBe(a);
    const rows = await db.selectFrom("budget_reservations").select("reservation_id").where("tenant_id", "=", twin.batched).where("execution_id", "=", "same").execute();
    expect(rows).toHaveLength(1);
    expect((await findBudget(db, twin.batched, T0))?.reserved_micros).toBe(500_000n);
  });

  it("answers an execution reserved by an earlier call as existing, holding nothing new", async () => {
    const twin = await twins("earlier", { limitMicros: 1_000_000n });
    const input = reserveInput(100_000n, { executionId: "before" });
    await reserveBudget(db, twin.batched, input);
    await reserveBudget(db, twin.serial, input);
    const { batched, serial } = await reserveBoth(twin, [reserveInput(100_000n), input]);
    expect(batched.map((o) => o.status)).toEqual(["reserved", "existing"]);
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    expect((await findBudget(db, twin.batched, T0))?.reserved_micros).toBe(200_000n);
  });

  it("creates a new tenant's default budget through the single path, in batch order", async () => {
    const defaults = { limitMicros: 500n, hardLimit: true, period: "daily" as const, alertThreshold: 0.9 };
    const batched = await reserveBatch(db, [200n, 200n, 200n].map((a) => ({ tenantId: "fresh", input: reserveInput(a, { defaults }) })));
    expect(batched.map((o) => o.status)).toEqual(["reserved", "reserved", "denied"]);
    expect(await findBudget(db, "fresh", T0)).toMatchObject({ is_default: true, limit_micros: 500n, reserved_micros: 400n });
  });

  it("rolls the period over and returns expired holds as one by one would", async () => {
    const twin = await twins("roll", { limitMicros: 1_000_000n, period: "daily" });
    for (const tenant of [twin.batched, twin.serial]) {
      const r = await reserveBudget(db, tenant, reserveInput(600_000n, { executionId: "spent" }));
      await settleBudget(db, tenant, { reservationId: reservationIds([r])[0]!, actualMicros: 600_000n, now: T0 });
      await reserveBudget(db, tenant, reserveInput(300_000n, { executionId: "abandoned", ttlMs: 1_000 }));
    }
    const nextDay = new Date("2026-03-11T08:00:00Z");
    const { batched, serial } = await reserveBoth(twin, [reserveInput(900_000n, { now: nextDay }), reserveInput(200_000n, { now: nextDay })]);
    expect(batched.map((o) => o.status)).toEqual(["reserved", "denied"]);
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    expect(await figures(twin.batched, nextDay)).toEqual(await figures(twin.serial, nextDay));
    expect(await findBudget(db, twin.batched, nextDay)).toMatchObject({ spent_micros: 0n, reserved_micros: 900_000n });
  });

  it("settles a batch exactly as one by one in batch order (window sums, one warning and one exceeded event)", async () => {
    const twin = await twins("settle", { limitMicros: 1_000_000n, alertThreshold: 0.5, hardLimit: false });
    const amounts = [300_000n, 300_000n, 300_000n, 300_000n];
    const held = await reserveBoth(twin, amounts.map((a) => reserveInput(a)));
    const actuals = [200_000n, 400_000n, 300_000n, 350_000n]; // crosses 50 % at the 2nd, the limit at the 4th
    const batchIds = reservationIds(held.batched);
    const serialIds = reservationIds(held.serial);
    const batched = await settleBatch(db, actuals.map((actualMicros, i) => ({ tenantId: twin.batched, input: { reservationId: batchIds[i]!, actualMicros, now: T0 } })));
    const serial: SettleOutcome[] = [];
    for (const [i, actualMicros] of actuals.entries()) serial.push(await settleBudget(db, twin.serial, { reservationId: serialIds[i]!, actualMicros, now: T0 }));
    expect(batched.map((o) => o.status)).toEqual(["settled", "settled", "settled", "settled"]);
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    expect(batched.map((o) => (o.status === "settled" ? o.settlement.thresholdCrossed : undefined))).toEqual([false, true, false, false]);
    expect(await figures(twin.batched)).toEqual(await figures(twin.serial));
    expect(await findBudget(db, twin.batched, T0)).toMatchObject({ spent_micros: 1_250_000n, reserved_micros: 0n });
    for (const tenant of [twin.batched, twin.serial]) {
      expect(await events(tenant, "budget_warning")).toHaveLength(1);
      expect(await events(tenant, "budget_exceeded")).toHaveLength(1);
    }

    // The markers are set for the period: another batch that stays over the limit alerts no more.
    const more = await reserveBoth(twin, [reserveInput(10n), reserveInput(10n)]);
    const moreIds = reservationIds(more.batched);
    const again = await settleBatch(db, moreIds.map((reservationId) => ({ tenantId: twin.batched, input: { reservationId, actualMicros: 10n, now: T0 } })));
    expect(again.map((o) => o.status)).toEqual(["settled", "settled"]);
    expect(await events(twin.batched, "budget_warning")).toHaveLength(1);
    expect(await events(twin.batched, "budget_exceeded")).toHaveLength(1);
  });

  it("settles as one set when no event can come due: overruns, expired holds and running sums as one by one", async () => {
    const twin = await twins("settle-set", { limitMicros: 10_000_000n });
    const held = await reserveBoth(twin, [reserveInput(100_000n), reserveInput(200_000n, { ttlMs: 1_000 }), reserveInput(300_000n)]);
    const later = new Date(T0.getTime() + 5_000);
    // The second reservation's hold is returned by the reconciler's unit of work: it settles as expired.
    for (const tenant of [twin.batched, twin.serial]) await releaseExpiredReservations(db, tenant, later);
    const actuals = [150_000n, 50_000n, 300_000n]; // the first overruns its reservation
    const ids = { batched: reservationIds(held.batched), serial: reservationIds(held.serial) };
    const batched = await withTransaction(db, async (trx) => {
      const before = await budgetRowUpdates(trx);
      const outcomes = await settleBatch(trx, actuals.map((actualMicros, i) => ({ tenantId: twin.batched, input: { reservationId: ids.batched[i]!, actualMicros, now: later } })));
      expect((await budgetRowUpdates(trx)) - before).toBe(1);
      return outcomes;
    });
    const serial: SettleOutcome[] = [];
    for (const [i, actualMicros] of actuals.entries()) serial.push(await settleBudget(db, twin.serial, { reservationId: ids.serial[i]!, actualMicros, now: later }));
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    expect(batched.map((o) => (o.status === "settled" ? o.settlement.spentMicros : undefined))).toEqual([150_000n, 200_000n, 500_000n]);
    expect(batched[0]).toMatchObject({ settlement: { warning: "actual cost 150000 exceeded the reservation of 100000 micro-dollars" } });
    expect(await figures(twin.batched, later)).toEqual(await figures(twin.serial, later));
    expect(await findBudget(db, twin.batched, later)).toMatchObject({ spent_micros: 500_000n, reserved_micros: 0n });
  });

  it("settles twice in one batch once: the second answers the first settlement", async () => {
    const twin = await twins("twice", { limitMicros: 1_000_000n });
    const held = await reserveBoth(twin, [reserveInput(300_000n), reserveInput(100_000n)]);
    const [id, other] = reservationIds(held.batched);
    const batched = await settleBatch(db, [
      { tenantId: twin.batched, input: { reservationId: id!, actualMicros: 250_000n, now: T0 } },
      { tenantId: twin.batched, input: { reservationId: other!, actualMicros: 100_000n, now: T0 } },
      { tenantId: twin.batched, input: { reservationId: id!, actualMicros: 999_999n, now: T0 } },
    ]);
    expect(batched.map((o) => o.status)).toEqual(["settled", "settled", "already_settled"]);
    const [first, , second] = batched;
    if (first?.status !== "settled" || second?.status !== "already_settled") throw new Error("unexpected");
    expect(second.settlement).toEqual(first.settlement);
    expect((await findBudget(db, twin.batched, T0))?.spent_micros).toBe(350_000n);
  });

  it("answers an unknown reservation not_found without affecting the batch's other items", async () => {
    const twin = await twins("unknown", { limitMicros: 1_000_000n });
    const held = await reserveBoth(twin, [reserveInput(100_000n), reserveInput(200_000n)]);
    const [a, b] = reservationIds(held.batched);
    const settled = await settleBatch(db, [
      { tenantId: twin.batched, input: { reservationId: a!, actualMicros: 100_000n, now: T0 } },
      { tenantId: twin.batched, input: { reservationId: "no-such-reservation", actualMicros: 5n, now: T0 } },
      { tenantId: twin.batched, input: { reservationId: b!, actualMicros: 50_000n, now: T0 } },
    ]);
    expect(settled.map((o) => o.status)).toEqual(["settled", "not_found", "settled"]);
    expect(await findBudget(db, twin.batched, T0)).toMatchObject({ spent_micros: 150_000n, reserved_micros: 0n });
    const released = await releaseBatch(db, [{ tenantId: twin.batched, reservationId: "nope", reason: "", now: T0 }, { tenantId: "no-budget", reservationId: a!, reason: "", now: T0 }]);
    expect(released).toEqual([{ status: "not_found" }, { status: "not_found" }]);
  });

  it("keeps tenants apart inside one batch: B's reservations are never A's", async () => {
    await upsertBudget(db, "mix-a", { limitMicros: 1_000_000n }, T0);
    await upsertBudget(db, "mix-b", { limitMicros: 1_000_000n }, T0);
    const reserved = await reserveBatch(db, [
      { tenantId: "mix-a", input: reserveInput(100_000n, { executionId: "shared-execution" }) },
      { tenantId: "mix-b", input: reserveInput(900_000n, { executionId: "shared-execution" }) },
    ]);
    // The same execution id is two reservations, one per tenant; neither sees the other's hold.
    expect(reserved.map((o) => o.status)).toEqual(["reserved", "reserved"]);
    expect(reserved.map((o) => o.figures.reservedMicros)).toEqual([0n, 0n]);
    const [aId, bId] = reservationIds(reserved);
    const settle = (tenantId: string, reservationId: string, actualMicros: bigint): SettleItem => ({ tenantId, input: { reservationId, actualMicros, now: T0 } });
    const settled = await settleBatch(db, [settle("mix-a", bId!, 1n), settle("mix-b", bId!, 800_000n), settle("mix-b", aId!, 1n)]);
    expect(settled.map((o) => o.status)).toEqual(["not_found", "settled", "not_found"]);
    const release = (tenantId: string, reservationId: string): ReleaseItem => ({ tenantId, reservationId, reason: "", now: T0 });
    const released = await releaseBatch(db, [release("mix-b", aId!), release("mix-a", aId!), release("mix-a", bId!)]);
    expect(released.map((o) => o.status)).toEqual(["not_found", "released", "not_found"]);
    expect(await findBudget(db, "mix-a", T0)).toMatchObject({ spent_micros: 0n, reserved_micros: 0n });
    expect(await findBudget(db, "mix-b", T0)).toMatchObject({ spent_micros: 800_000n, reserved_micros: 0n });
    expect((await findReservation(db, "mix-a", bId!))).toBeUndefined();
  });

  it("releases a batch as one by one: holds returned once, a repeated release answers closed", async () => {
    const twin = await twins("release", { limitMicros: 1_000_000n });
    const held = await reserveBoth(twin, [reserveInput(100_000n), reserveInput(200_000n), reserveInput(300_000n)]);
    const ids = { batched: reservationIds(held.batched), serial: reservationIds(held.serial) };
    await settleBudget(db, twin.batched, { reservationId: ids.batched[2]!, actualMicros: 1n, now: T0 });
    await settleBudget(db, twin.serial, { reservationId: ids.serial[2]!, actualMicros: 1n, now: T0 });
    const order = [0, 1, 0, 2];
    const batched = await releaseBatch(db, order.map((i) => ({ tenantId: twin.batched, reservationId: ids.batched[i]!, reason: "cancelled", now: T0 })));
    const serial: ReleaseOutcome[] = [];
    for (const i of order) serial.push(await releaseBudget(db, twin.serial, ids.serial[i]!, "cancelled", T0));
    expect(batched.map((o) => o.status)).toEqual(["released", "released", "closed", "closed"]);
    expect(batched.map(comparable)).toEqual(serial.map(comparable));
    expect(await figures(twin.batched)).toEqual(await figures(twin.serial));
    expect((await findBudget(db, twin.batched, T0))?.reserved_micros).toBe(0n);
  });

  it("runs a mixed batch's releases and settlements before its reservations, which may then use the freed holds", async () => {
    await upsertBudget(db, "mixed", { limitMicros: 1_000_000n }, T0);
    const [settling, releasing] = reservationIds([await reserveBudget(db, "mixed", reserveInput(400_000n)), await reserveBudget(db, "mixed", reserveInput(500_000n))]);
    const answers = await Promise.all(
      await applyBudgetBatch(db, [
        { kind: "reserve", tenantId: "mixed", input: reserveInput(500_000n) },
        { kind: "settle", tenantId: "mixed", input: { reservationId: settling!, actualMicros: 300_000n, now: T0 } },
        { kind: "release", tenantId: "mixed", reservationId: releasing!, reason: "cancelled", now: T0 },
      ]),
    );
    // In the order given the reservation would not have fit (900,000 held); run last, it does.
    expect(answers.map((a) => `${a.kind}:${a.outcome.status}`)).toEqual(["reserve:reserved", "settle:settled", "release:released"]);
    expect(answers[0]).toMatchObject({ outcome: { figures: { spentMicros: 300_000n, reservedMicros: 0n } } });
    expect(await findBudget(db, "mixed", T0)).toMatchObject({ spent_micros: 300_000n, reserved_micros: 500_000n });
  });

  it("defers a lone operation of its kind like a batched one: a new tenant's first reservation, a settlement whose event is due", async () => {
    await upsertBudget(db, "lone", { limitMicros: 1_000_000n, alertThreshold: 0.5 }, T0);
    const [id] = reservationIds([await reserveBudget(db, "lone", reserveInput(600_000n))]);
    const defaults = { limitMicros: 500n, hardLimit: true, period: "daily" as const, alertThreshold: 0.9 };
    const answers = await Promise.all(
      await applyBudgetBatch(db, [
        { kind: "reserve", tenantId: "lone-new", input: reserveInput(100n, { defaults }) },
        { kind: "settle", tenantId: "lone", input: { reservationId: id!, actualMicros: 600_000n, now: T0 } },
      ]),
    );
    expect(answers.map((a) => `${a.kind}:${a.outcome.status}`)).toEqual(["reserve:reserved", "settle:settled"]);
    expect(answers[1]).toMatchObject({ outcome: { settlement: { thresholdCrossed: true, spentMicros: 600_000n } } });
    expect(await events("lone", "budget_warning")).toHaveLength(1);
    expect(await findBudget(db, "lone-new", T0)).toMatchObject({ is_default: true, limit_micros: 500n, reserved_micros: 100n });
  });

  it("fails a batch as a whole, writing nothing, when one item is invalid", async () => {
    await upsertBudget(db, "invalid", { limitMicros: 1_000_000n }, T0);
    const operations: BudgetOperation[] = [
      { kind: "reserve", tenantId: "invalid", input: reserveInput(100_000n) },
      { kind: "reserve", tenantId: "invalid", input: reserveInput(-1n) },
    ];
    await expect(applyBudgetBatch(db, operations)).rejects.toThrow(/amount_micros/);
    expect((await findBudget(db, "invalid", T0))?.reserved_micros).toBe(0n);
  });
});
