import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kysely } from "kysely";
import { withTransaction } from "@clasper/db";
import { testBackendFromEnv, useFreshDatabase } from "@clasper/db/testing";
import { DEFAULT_BUDGET, type BudgetDefaults } from "../src/budget-check.js";
import { startBudgetReconciler } from "../src/budget-reconciler.js";
import {
  checkBudget,
  findBudget,
  findReservation,
  releaseBudget,
  reserveBudget,
  settleBudget,
  upsertBudget,
} from "../src/store/budgets.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { auditData, reserveInputs, T0 } from "./budget-support.js";

let db: Kysely<GovernanceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "governance", (database) => {
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
});

const reserveInput = reserveInputs("exec");

const events = (tenantId: string, eventType: string) => auditData(db, tenantId, eventType);

describe(`budget store (${testBackendFromEnv()})`, () => {
  it("creates a monthly hard budget by default and keeps spend on update", async () => {
    const created = await upsertBudget(db, "t-upsert", { limitMicros: 1_000_000n }, T0);
    expect(created).toMatchObject({ limit_micros: 1_000_000n, spent_micros: 0n, period: "monthly", hard_limit: true, alert_threshold: 0.8 });
    expect(created.period_start.toISOString()).toBe("2026-03-01T00:00:00.000Z");
    expect(created.period_end?.toISOString()).toBe("2026-04-01T00:00:00.000Z");

    const r = await reserveBudget(db, "t-upsert", reserveInput(300_000n));
    if (r.status !== "reserved") throw new Error(r.status);
    await settleBudget(db, "t-upsert", { reservationId: r.reservation.reservation_id, actualMicros: 250_000n, now: T0 });

    const updated = await upsertBudget(db, "t-upsert", { limitMicros: 2_000_000n, hardLimit: false, alertThreshold: 0.5 }, T0);
    expect(updated).toMatchObject({ limit_micros: 2_000_000n, spent_micros: 250_000n, period: "monthly", hard_limit: false, alert_threshold: 0.5 });

    const weekly = await upsertBudget(db, "t-upsert", { limitMicros: 2_000_000n, period: "weekly" }, T0);
    // 2026-03-10 is a Tuesday: the week started on Monday the 9th. Spend is kept on a period change.
    expect(weekly).toMatchObject({ period: "weekly", spent_micros: 250_000n, hard_limit: false });
    expect(weekly.period_start.toISOString()).toBe("2026-03-09T00:00:00.000Z");
    expect(weekly.period_end?.toISOString()).toBe("2026-03-16T00:00:00.000Z");

    const none = await upsertBudget(db, "t-upsert", { limitMicros: 2_000_000n, period: "none" }, T0);
    expect(none.period_end).toBeNull();
  });

  it("settles below the estimate: charges the actual cost and frees the rest", async () => {
    await upsertBudget(db, "t-below", { limitMicros: 1_000_000n }, T0);
    const r = await reserveBudget(db, "t-below", reserveInput(400_000n));
    expect(r.status).toBe("reserved");
    if (r.status !== "reserved") return;
    expect(r.check).toMatchObject({ allowed: true, reason: "within_budget", remainingMicros: 1_000_000n });
    expect((await findBudget(db, "t-below", T0))?.reserved_micros).toBe(400_000n);

    const s = await settleBudget(db, "t-below", { reservationId: r.reservation.reservation_id, actualMicros: 100_000n, now: T0 });
    expect(s).toMatchObject({ status: "settled", settlement: { spentMicros: 100_000n, remainingMicros: 900_000n, exceeded: false, thresholdCrossed: false, warning: "" } });
    expect(await findBudget(db, "t-below", T0)).toMatchObject({ spent_micros: 100_000n, reserved_micros: 0n });
  });

  it("settles above the estimate on a hard budget: charges it all, records the overrun, alerts once", async () => {
    await upsertBudget(db, "t-above", { limitMicros: 1_000_000n, alertThreshold: 0.5 }, T0);
    const r = await reserveBudget(db, "t-above", reserveInput(900_000n));
    if (r.status !== "reserved") throw new Error(r.status);
    const s = await settleBudget(db, "t-above", { reservationId: r.reservation.reservation_id, actualMicros: 1_200_000n, now: T0 });
    if (s.status !== "settled") throw new Error(s.status);
    expect(s.settlement).toMatchObject({ spentMicros: 1_200_000n, remainingMicros: -200_000n, exceeded: true, thresholdCrossed: true });
    expect(s.settlement.warning).toContain("actual cost 1200000 exceeded the reservation of 900000");
    expect(s.settlement.warning).toContain("budget exceeded");
    expect(await findBudget(db, "t-above", T0)).toMatchObject({ spent_micros: 1_200_000n, reserved_micros: 0n });
    expect(await events("t-above", "budget_exceeded")).toHaveLength(1);
    expect(await events("t-above", "budget_warning")).toHaveLength(1);

    // Over the hard limit now: every further reservation is denied; the denial does not alert again.
    const denied = await reserveBudget(db, "t-above", reserveInput(1n));
    expect(denied).toMatchObject({ status: "denied", check: { allowed: false, reason: "budget_exceeded" } });
    expect(await events("t-above", "budget_exceeded")).toHaveLength(1);
  });

  it("settles and releases at most once", async () => {
    await upsertBudget(db, "t-once", { limitMicros: 1_000_000n }, T0);
    const r = await reserveBudget(db, "t-once", reserveInput(500_000n));
    if (r.status !== "reserved") throw new Error(r.status);
    const id = r.reservation.reservation_id;
    const first = await settleBudget(db, "t-once", { reservationId: id, actualMicros: 300_000n, now: T0 });
    // A second reservation moves the budget; the repeated settle still answers as the first did.
    const other = await reserveBudget(db, "t-once", reserveInput(100_000n));
    if (other.status !== "reserved") throw new Error(other.status);
    await settleBudget(db, "t-once", { reservationId: other.reservation.reservation_id, actualMicros: 100_000n, now: T0 });
    const second = await settleBudget(db, "t-once", { reservationId: id, actualMicros: 999_999n, now: T0 });
    expect(second.status).toBe("already_settled");
    if (first.status !== "settled" || second.status !== "already_settled") return;
    expect(second.settlement).toEqual(first.settlement);
    expect((await findBudget(db, "t-once", T0))?.spent_micros).toBe(400_000n);

    expect(await releaseBudget(db, "t-once", id, "cancelled", T0)).toMatchObject({ status: "closed", releasedMicros: 0n });
    const third = await reserveBudget(db, "t-once", reserveInput(200_000n));
    if (third.status !== "reserved") throw new Error(third.status);
    const rel = await releaseBudget(db, "t-once", third.reservation.reservation_id, "provider_error", T0);
    expect(rel).toMatchObject({ status: "released", releasedMicros: 200_000n });
    expect(await releaseBudget(db, "t-once", third.reservation.reservation_id, "again", T0)).toMatchObject({ status: "closed", releasedMicros: 0n });
    expect(await settleBudget(db, "t-once", { reservationId: third.reservation.reservation_id, actualMicros: 1n, now: T0 })).toMatchObject({ status: "released" });
    expect(await findBudget(db, "t-once", T0)).toMatchObject({ spent_micros: 400_000n, reserved_micros: 0n });
  });

  it("is idempotent by execution id", async () => {
    await upsertBudget(db, "t-idem", { limitMicros: 1_000_000n }, T0);
    const a = await reserveBudget(db, "t-idem", reserveInput(600_000n, { executionId: "same" }));
    const b = await reserveBudget(db, "t-idem", reserveInput(600_000n, { executionId: "same" }));
    expect(a.status).toBe("reserved");
    expect(b.status).toBe("existing");
    if (a.status !== "reserved" || b.status !== "existing") return;
    expect(b.reservation.reservation_id).toBe(a.reservation.reservation_id);
    expect((await findBudget(db, "t-idem", T0))?.reserved_micros).toBe(600_000n);
  });

  it("hides other tenants' reservations", async () => {
    await upsertBudget(db, "t-owner", { limitMicros: 1_000_000n }, T0);
    await upsertBudget(db, "t-thief", { limitMicros: 1_000_000n }, T0);
    const r = await reserveBudget(db, "t-owner", reserveInput(100_000n));
    if (r.status !== "reserved") throw new Error(r.status);
    const id = r.reservation.reservation_id;
    expect(await settleBudget(db, "t-thief", { reservationId: id, actualMicros: 1n, now: T0 })).toEqual({ status: "not_found" });
    expect(await releaseBudget(db, "t-thief", id, "", T0)).toEqual({ status: "not_found" });
    expect(await findReservation(db, "t-thief", id)).toBeUndefined();
    expect((await findReservation(db, "t-owner", id))?.status).toBe("open");
  });

  it("denies on a hard budget, warns on a soft one", async () => {
    await upsertBudget(db, "t-hard", { limitMicros: 1_000_000n }, T0);
    expect(await reserveBudget(db, "t-hard", reserveInput(1_000_001n))).toMatchObject({ status: "denied", check: { allowed: false, reason: "budget_exceeded" } });
    expect(await events("t-hard", "budget_exceeded")).toHaveLength(1);
    await reserveBudget(db, "t-hard", reserveInput(2_000_000n));
    expect(await events("t-hard", "budget_exceeded")).toHaveLength(1);
    expect((await findBudget(db, "t-hard", T0))?.reserved_micros).toBe(0n);

    await upsertBudget(db, "t-soft", { limitMicros: 1_000_000n, hardLimit: false }, T0);
    const soft = await reserveBudget(db, "t-soft", reserveInput(1_500_000n));
    expect(soft).toMatchObject({ status: "reserved", check: { allowed: true, reason: "budget_exceeded" } });
    expect(soft.check.warning).toMatch(/soft limit/);
    const check = await checkBudget(db, "t-soft", 0n, DEFAULT_BUDGET, T0);
    expect(check).toMatchObject({ reason: "budget_exceeded", remainingMicros: -500_000n, percentUsed: 150 });
  });

  it("releases an unsettled reservation after its TTL (reconciler) and lazily on the next reserve", async () => {
    await upsertBudget(db, "t-ttl", { limitMicros: 1_000_000n }, T0);
    const r = await reserveBudget(db, "t-ttl", reserveInput(700_000n, { ttlMs: 1_000 }));
    if (r.status !== "reserved") throw new Error(r.status);
    expect(r.reservation.expires_at.toISOString()).toBe("2026-03-10T12:00:01.000Z");
    // Before the TTL: still held.
    let clock = new Date(T0.getTime() + 500);
    const reconciler = startBudgetReconciler(db, { intervalMs: 3_600_000, now: () => clock });
    try {
      expect(await reconciler.runOnce()).toBe(0);
      expect((await findBudget(db, "t-ttl", clock))?.reserved_micros).toBe(700_000n);
      clock = new Date(T0.getTime() + 1_000);
      expect(await reconciler.runOnce()).toBe(1);
      expect((await findBudget(db, "t-ttl", clock))?.reserved_micros).toBe(0n);
      expect((await findReservation(db, "t-ttl", r.reservation.reservation_id))?.status).toBe("expired");
      expect(await reconciler.runOnce()).toBe(0);
    } finally {
      reconciler.stop();
    }
    // A late settle of an expired reservation still charges what was spent, without touching reserved.
    const late = await settleBudget(db, "t-ttl", { reservationId: r.reservation.reservation_id, actualMicros: 50_000n, now: clock });
    expect(late).toMatchObject({ status: "settled", settlement: { spentMicros: 50_000n } });
    expect(await findBudget(db, "t-ttl", clock)).toMatchObject({ spent_micros: 50_000n, reserved_micros: 0n });

    // Lazy: an expired hold of a hard budget does not block the tenant's next reservation.
    const held = await reserveBudget(db, "t-ttl", reserveInput(900_000n, { ttlMs: 1_000, now: clock }));
    expect(held.status).toBe("reserved");
    const later = new Date(clock.getTime() + 2_000);
    expect(await reserveBudget(db, "t-ttl", reserveInput(900_000n, { now: later }))).toMatchObject({ status: "reserved" });
    expect((await findBudget(db, "t-ttl", later))?.reserved_micros).toBe(900_000n);
  });

  it("rolls the period over at the boundary, atomically with the reservation", async () => {
    await upsertBudget(db, "t-roll", { limitMicros: 1_000_000n, period: "daily", alertThreshold: 0.5 }, T0);
    const r = await reserveBudget(db, "t-roll", reserveInput(800_000n));
    if (r.status !== "reserved") throw new Error(r.status);
    await settleBudget(db, "t-roll", { reservationId: r.reservation.reservation_id, actualMicros: 800_000n, now: T0 });
    expect(await events("t-roll", "budget_warning")).toHaveLength(1);
    const lastMoment = new Date("2026-03-10T23:59:59.999Z");
    expect(await reserveBudget(db, "t-roll", reserveInput(300_000n, { now: lastMoment }))).toMatchObject({ status: "denied" });

    const nextDay = new Date("2026-03-11T00:00:00Z");
    expect(await findBudget(db, "t-roll", nextDay)).toMatchObject({ spent_micros: 0n });
    const fresh = await reserveBudget(db, "t-roll", reserveInput(600_000n, { now: nextDay }));
    expect(fresh.status).toBe("reserved");
    const row = await findBudget(db, "t-roll", nextDay);
    expect(row).toMatchObject({ spent_micros: 0n, reserved_micros: 600_000n });
    expect(row?.period_start.toISOString()).toBe("2026-03-11T00:00:00.000Z");
    expect(row?.period_end?.toISOString()).toBe("2026-03-12T00:00:00.000Z");
    if (fresh.status !== "reserved") return;
    // The new period alerts again, once.
    await settleBudget(db, "t-roll", { reservationId: fresh.reservation.reservation_id, actualMicros: 600_000n, now: nextDay });
    expect(await events("t-roll", "budget_warning")).toHaveLength(2);

    // Idle for several periods: the next one is the period containing "now", not the next in line.
    const much = new Date("2026-03-20T08:00:00Z");
    await reserveBudget(db, "t-roll", reserveInput(100_000n, { now: much }));
    const idle = await findBudget(db, "t-roll", much);
    expect(idle?.period_start.toISOString()).toBe("2026-03-20T00:00:00.000Z");
    expect(idle?.spent_micros).toBe(0n);
  });

  it("rolls a monthly budget over at the 1st, 00:00 UTC, across month lengths", async () => {
    await upsertBudget(db, "t-month", { limitMicros: 10n, period: "monthly" }, new Date("2026-01-31T23:00:00Z"));
    const feb = await findBudget(db, "t-month", new Date("2026-02-01T00:00:00Z"));
    expect(feb?.period_start.toISOString()).toBe("2026-02-01T00:00:00.000Z");
    expect(feb?.period_end?.toISOString()).toBe("2026-03-01T00:00:00.000Z");
  });

  it("rejects any write that breaks a budget's invariants, whoever writes it", async () => {
    await upsertBudget(db, "t-invariants", { limitMicros: 1_000n, period: "daily" }, T0);
    const write = (set: Record<string, unknown>) =>
      db
        .updateTable("budgets")
        .set(set as never)
        .where("tenant_id", "=", "t-invariants")
        .execute();
    for (const broken of [
      { reserved_micros: -1 },
      { spent_micros: -1 },
      { limit_micros: 0 },
      { alert_threshold: 1.5 },
      { alert_threshold: Number.NaN },
      { period: "yearly" },
      { period_end: null },
    ]) {
      await expect(write(broken), JSON.stringify(broken)).rejects.toThrow(/violates check constraint/);
    }
    expect(await findBudget(db, "t-invariants", T0)).toMatchObject({ limit_micros: 1_000n, spent_micros: 0n, reserved_micros: 0n, alert_threshold: 0.8, period: "daily" });
  });

  it("gives a tenant without a budget the configured default on its first reservation", async () => {
    const defaults: BudgetDefaults = { limitMicros: 500n, hardLimit: true, period: "daily", alertThreshold: 0.9 };
    expect(await findBudget(db, "t-new", T0)).toBeUndefined();
    expect(await checkBudget(db, "t-new", 600n, defaults, T0)).toMatchObject({ allowed: false, reason: "budget_exceeded" });
    const r = await withTransaction(db, (trx) => reserveBudget(trx, "t-new", reserveInput(400n, { defaults })));
    expect(r.status).toBe("reserved");
    expect(await findBudget(db, "t-new", T0)).toMatchObject({ limit_micros: 500n, hard_limit: true, period: "daily", is_default: true, reserved_micros: 400n });
    expect(await reserveBudget(db, "t-new", reserveInput(101n, { defaults }))).toMatchObject({ status: "denied" });
  });
});
