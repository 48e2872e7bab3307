import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kysely } from "kysely";
import { buildPrincipal, createContextSigner, createContextVerifier, type Role } from "@clasper/auth";
import { errorInfoOf } from "@clasper/core";
import { testBackendFromEnv, useFreshDatabase } from "@clasper/db/testing";
import { AuditEventType, BudgetCheckReason, BudgetPeriod, type GovernanceService } from "@clasper/proto";
import { BudgetBatcher } from "../src/budget-batcher.js";
import { budgetConfig } from "../src/config-budgets.js";
import { BudgetHandlers } from "../src/handlers/budgets.js";
import { routes } from "../src/routes.js";
import { listAuditEntries } from "../src/store/audit.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { signedClient } from "./policies-support.js";

const SECRET = "budgets-test-internal-secret-0123456789abcdef";
const signer = createContextSigner(SECRET);
const verifier = createContextVerifier(SECRET);

let db: Kysely<GovernanceDatabase>;
let now = new Date("2026-05-20T10:00:00Z");
let router: ReturnType<typeof routes>;

useFreshDatabase({ beforeAll, afterAll }, "governance", (database) => {
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  const { defaults } = budgetConfig({ CLASPER_DEFAULT_BUDGET_MICROS: "5000000", CLASPER_DEFAULT_BUDGET_HARD: "true" });
  router = routes(new BudgetHandlers(db, defaults, new BudgetBatcher(db), () => now));
});

/** A client through the real auth and validation interceptors, as a caller of `tenantId`. */
function client(tenantId = "tenant-a", roles: Role[] = ["admin"]): Client<typeof GovernanceService> {
  return signedClient(router, buildPrincipal({ kind: "user", tenantId, userId: "user-1", roles }), { signer, verifier });
}

async function failure(promise: Promise<unknown>): Promise<{ code: Code; reason: string | undefined; field: string | undefined; httpStatus: number | undefined }> {
  try {
    await promise;
  } catch (err) {
    const e = ConnectError.from(err);
    const info = errorInfoOf(e);
    return { code: e.code, reason: info?.code, field: info?.field, httpStatus: info?.httpStatus };
  }
  throw new Error("expected the call to fail");
}

describe(`budget RPCs (${testBackendFromEnv()})`, () => {
  it("GET /budget: not found before POST /budget, then the budget with its stats", async () => {
    const c = client("t-get");
    expect(await failure(c.getBudget({}))).toMatchObject({ code: Code.NotFound });
    const set = await c.setBudget({ limitMicros: 10_000_000n, period: BudgetPeriod.MONTHLY, hardLimit: false, alertThreshold: 0.5 });
    expect(set.budget).toMatchObject({ limitMicros: 10_000_000n, spentMicros: 0n, period: BudgetPeriod.MONTHLY, hardLimit: false, alertThreshold: 0.5 });
    const r = await c.reserveBudget({ executionId: "e1", amountMicros: 4_000_000n });
    await c.settleBudget({ reservationId: r.reservationId, actualMicros: 3_800_000n });
    const got = await c.getBudget({});
    expect(got.budget).toMatchObject({ spentMicros: 3_800_000n, reservedMicros: 0n });
    // 2026-05-20 10:00: 20 days elapsed (ceil), 12 remaining (ceil) until June 1st.
    expect(got.stats).toMatchObject({ remainingMicros: 6_200_000n, percentUsed: 38, averageDailySpendMicros: 190_000n, daysRemaining: 12 });
    expect(got.stats?.projectedPeriodSpendMicros).toBe(3_800_000n + 190_000n * 12n);
  });

  it("POST /budget/check answers allowed / reason / remaining / percent / warning", async () => {
    const c = client("t-check");
    await c.setBudget({ limitMicros: 1_000_000n, alertThreshold: 0.8 });
    expect((await c.checkBudget({ estimatedCostMicros: 100_000n })).check).toMatchObject({ allowed: true, reason: BudgetCheckReason.WITHIN_BUDGET, remainingMicros: 1_000_000n, percentUsed: 10 });
    const warn = (await c.checkBudget({ estimatedCostMicros: 850_000n })).check;
    expect(warn).toMatchObject({ allowed: true, reason: BudgetCheckReason.ALERT_THRESHOLD_REACHED, percentUsed: 85 });
    expect(warn?.warning).toMatch(/85\.0%/);
    expect((await c.checkBudget({ estimatedCostMicros: 1_000_001n })).check).toMatchObject({ allowed: false, reason: BudgetCheckReason.BUDGET_EXCEEDED });
    // Nothing was reserved by checking.
    expect((await c.getBudget({})).budget?.reservedMicros).toBe(0n);
  });

  it("a tenant without a budget is checked and reserved against the configured default", async () => {
    const c = client("t-default");
    expect((await c.checkBudget({ estimatedCostMicros: 6_000_000n })).check).toMatchObject({ allowed: false, limitMicros: 5_000_000n });
    await c.reserveBudget({ executionId: "d1", amountMicros: 1_000_000n });
    expect((await c.getBudget({})).budget).toMatchObject({ limitMicros: 5_000_000n, hardLimit: true, reservedMicros: 1_000_000n });
  });

  it("ReserveBudget on a hard budget denies with budget_exceeded, HTTP 402; a soft one warns", async () => {
    const hard = client("t-deny");
    await hard.setBudget({ limitMicros: 1_000_000n });
    expect(await failure(hard.reserveBudget({ executionId: "big", amountMicros: 1_000_001n }))).toMatchObject({
      code: Code.ResourceExhausted,
      reason: "budget_exceeded",
      httpStatus: 402,
    });
    const soft = client("t-soft");
    await soft.setBudget({ limitMicros: 1_000_000n, hardLimit: false });
    const r = await soft.reserveBudget({ executionId: "big", amountMicros: 1_000_001n, ttlMs: 60_000n });
    expect(r.reservationId).not.toBe("");
    expect(r.check).toMatchObject({ allowed: true, reason: BudgetCheckReason.BUDGET_EXCEEDED });
    expect(r.check?.warning).toMatch(/soft limit/);
    expect(r.expiresAt?.seconds).toBe(BigInt(now.getTime() / 1000 + 60));
  });

  it("SettleBudget is idempotent; ReleaseBudget returns the hold once; settle after release is refused", async () => {
    const c = client("t-settle");
    await c.setBudget({ limitMicros: 1_000_000n });
    const r = await c.reserveBudget({ executionId: "s1", amountMicros: 500_000n });
    const first = await c.settleBudget({ reservationId: r.reservationId, actualMicros: 200_000n, model: "gpt-4o" });
    expect(first).toMatchObject({ spentMicros: 200_000n, remainingMicros: 800_000n, exceeded: false });
    expect(await c.settleBudget({ reservationId: r.reservationId, actualMicros: 1n })).toEqual(first);

    const again = await c.reserveBudget({ executionId: "s2", amountMicros: 300_000n });
    expect((await c.releaseBudget({ reservationId: again.reservationId, reason: "provider_error" })).releasedMicros).toBe(300_000n);
    expect((await c.releaseBudget({ reservationId: again.reservationId })).releasedMicros).toBe(0n);
    expect(await failure(c.settleBudget({ reservationId: again.reservationId, actualMicros: 1n }))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "reservation_released",
    });
  });

  it("SettleBudget appends the caller's closing audit entry once the reservation is settled, once per key; a refused settle appends nothing", async () => {
    const c = client("t-settle-audit");
    const r = await c.reserveBudget({ executionId: "e1", amountMicros: 500n });
    const settledAudit = { eventType: AuditEventType.AGENT_EXECUTION_COMPLETED, traceId: "trace-1", eventData: { execution_id: "e1", cost_micros: 400 }, idempotencyKey: "e1:completed" };
    await c.settleBudget({ reservationId: r.reservationId, actualMicros: 400n, settledAudit });
    // A retry (the first answer lost) settles nothing twice and appends nothing twice.
    await c.settleBudget({ reservationId: r.reservationId, actualMicros: 400n, settledAudit });
    const completed = (await listAuditEntries(db, "t-settle-audit", { eventType: "agent_execution_completed" }, { limit: 10 })).entries;
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({ actor: "user-1", trace_id: "trace-1", data: { execution_id: "e1", cost_micros: 400 } });

    const released = await c.reserveBudget({ executionId: "e2", amountMicros: 500n });
    await c.releaseBudget({ reservationId: released.reservationId });
    const refused = await failure(c.settleBudget({ reservationId: released.reservationId, actualMicros: 1n, settledAudit: { ...settledAudit, idempotencyKey: "e2:completed" } }));
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "reservation_released" });
    expect(await failure(c.settleBudget({ reservationId: "no-such-id", actualMicros: 1n, settledAudit: { ...settledAudit, idempotencyKey: "e3:completed" } }))).toMatchObject({ code: Code.NotFound });
    expect((await listAuditEntries(db, "t-settle-audit", { eventType: "agent_execution_completed" }, { limit: 10 })).entries).toHaveLength(1);
    // An unknown event type is refused naming the field.
    expect(await failure(c.settleBudget({ reservationId: r.reservationId, actualMicros: 400n, settledAudit: { ...settledAudit, eventType: 999 as AuditEventType } }))).toMatchObject({ code: Code.InvalidArgument });
  });

  it("answers NotFound for another tenant's reservation id", async () => {
    const owner = client("t-owner");
    const thief = client("t-thief");
    await owner.setBudget({ limitMicros: 1_000_000n });
    await thief.setBudget({ limitMicros: 1_000_000n });
    const r = await owner.reserveBudget({ executionId: "x", amountMicros: 100n });
    expect(await failure(thief.settleBudget({ reservationId: r.reservationId, actualMicros: 1n }))).toMatchObject({ code: Code.NotFound, field: "reservation_id" });
    expect(await failure(thief.releaseBudget({ reservationId: r.reservationId }))).toMatchObject({ code: Code.NotFound, field: "reservation_id" });
    expect(await failure(thief.settleBudget({ reservationId: "no-such-id", actualMicros: 1n }))).toMatchObject({ code: Code.NotFound });
    // The owner's reservation is untouched.
    expect((await owner.settleBudget({ reservationId: r.reservationId, actualMicros: 100n })).spentMicros).toBe(100n);
  });

  it("rolls over at the period boundary (injected clock)", async () => {
    const c = client("t-roll");
    await c.setBudget({ limitMicros: 1_000_000n, period: BudgetPeriod.DAILY });
    const r = await c.reserveBudget({ executionId: "r1", amountMicros: 900_000n });
    await c.settleBudget({ reservationId: r.reservationId, actualMicros: 900_000n });
    expect(await failure(c.reserveBudget({ executionId: "r2", amountMicros: 200_000n }))).toMatchObject({ reason: "budget_exceeded" });
    const saved = now;
    try {
      now = new Date("2026-05-21T00:00:00Z");
      const next = await c.reserveBudget({ executionId: "r3", amountMicros: 200_000n });
      expect(next.check).toMatchObject({ spentMicros: 0n, allowed: true });
      expect((await c.getBudget({})).budget?.periodStart?.seconds).toBe(BigInt(Date.parse("2026-05-21T00:00:00Z") / 1000));
    } finally {
      now = saved;
    }
  });

  it("rejects bad input on every budget RPC, naming the field", async () => {
    const c = client("t-bad");
    const cases: [() => Promise<unknown>, string][] = [
      [() => c.setBudget({ limitMicros: 0n }), "limit_micros"],
      [() => c.setBudget({ limitMicros: 1_000_000_000_000_001n }), "limit_micros"],
      [() => c.setBudget({ limitMicros: 1n, alertThreshold: 1.5 }), "alert_threshold"],
      [() => c.setBudget({ limitMicros: 1n, alertThreshold: -0.1 }), "alert_threshold"],
      [() => c.setBudget({ limitMicros: 1n, period: 42 as BudgetPeriod }), "period"],
      [() => c.checkBudget({ estimatedCostMicros: -1n }), "estimated_cost_micros"],
      [() => c.checkBudget({ estimatedCostMicros: 1_000_000_000_000_001n }), "estimated_cost_micros"],
      [() => c.reserveBudget({ executionId: "", amountMicros: 1n }), "execution_id"],
      [() => c.reserveBudget({ executionId: "x".repeat(129), amountMicros: 1n }), "execution_id"],
      [() => c.reserveBudget({ executionId: "e", amountMicros: -1n }), "amount_micros"],
      [() => c.reserveBudget({ executionId: "e", amountMicros: 9_000_000_000_000_000n }), "amount_micros"],
      [() => c.reserveBudget({ executionId: "e", amountMicros: 1n, ttlMs: 999n }), "ttl_ms"],
      [() => c.reserveBudget({ executionId: "e", amountMicros: 1n, ttlMs: 86_400_001n }), "ttl_ms"],
      [() => c.reserveBudget({ executionId: "e", amountMicros: 1n, traceId: "t".repeat(65) }), "trace_id"],
      [() => c.settleBudget({ reservationId: "", actualMicros: 1n }), "reservation_id"],
      [() => c.settleBudget({ reservationId: "r", actualMicros: -1n }), "actual_micros"],
      [() => c.settleBudget({ reservationId: "r", actualMicros: 9_000_000_000_000_000n }), "actual_micros"],
      [() => c.settleBudget({ reservationId: "r", actualMicros: 1n, model: "m".repeat(201) }), "model"],
      [() => c.releaseBudget({ reservationId: "" }), "reservation_id"],
      [() => c.releaseBudget({ reservationId: "r", reason: "x".repeat(257) }), "reason"],
    ];
    for (const [call, field] of cases) {
      expect(await failure(call()), field).toMatchObject({ code: Code.InvalidArgument, field });
    }
  });

  it("enforces RBAC: a viewer sees nothing, an operator reads but cannot change, a release manager changes", async () => {
    await client("t-rbac").setBudget({ limitMicros: 1_000n });
    expect(await failure(client("t-rbac", ["viewer"]).getBudget({}))).toMatchObject({ code: Code.PermissionDenied });
    expect(await failure(client("t-rbac", ["viewer"]).checkBudget({ estimatedCostMicros: 1n }))).toMatchObject({ code: Code.PermissionDenied });
    const operator = client("t-rbac", ["operator"]);
    expect((await operator.getBudget({})).budget?.limitMicros).toBe(1_000n);
    expect(await failure(operator.setBudget({ limitMicros: 5n }))).toMatchObject({ code: Code.PermissionDenied });
    expect((await client("t-rbac", ["release_manager"]).setBudget({ limitMicros: 5n })).budget?.limitMicros).toBe(5n);
  });
});
