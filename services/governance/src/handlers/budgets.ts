import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, type HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf, tenantWide } from "@clasper/auth";
import { clasperError, failedPrecondition, invalidField, notFound, enumNames } from "@clasper/core";
import {
  BudgetPeriodSchema,
  BudgetCheckReason,
  BudgetCheckSchema,
  BudgetPeriod,
  BudgetSchema,
  BudgetStatsSchema,
  CheckBudgetResponseSchema,
  GetBudgetResponseSchema,
  ReleaseBudgetResponseSchema,
  ReserveBudgetResponseSchema,
  SetBudgetResponseSchema,
  SettleBudgetResponseSchema,
  type Budget,
  type BudgetCheck,
  type CheckBudgetRequest,
  type CheckBudgetResponse,
  type GetBudgetRequest,
  type GetBudgetResponse,
  type ReleaseBudgetRequest,
  type ReleaseBudgetResponse,
  type ReserveBudgetRequest,
  type ReserveBudgetResponse,
  type SetBudgetRequest,
  type SetBudgetResponse,
  type SettleBudgetRequest,
  type SettleBudgetResponse,
} from "@clasper/proto";
import { budgetStats, type BudgetCheckReasonValue, type BudgetCheckResult, type BudgetDefaults, type BudgetFigures } from "../budget-check.js";
import type { BudgetBatcher } from "../budget-batcher.js";
import { checkBudget, figuresOf, findBudget, upsertBudget, type BudgetRow } from "../store/budgets.js";
import type { GovernanceDatabase } from "../store/schema.js";
import { appendCallerAudit } from "./audit.js";
import type { BudgetPeriodValue } from "../store/schema-budgets.js";

/** Largest amount one reservation or settlement may carry (= the largest limit): keeps int8 sums far from overflow. */
const MAX_AMOUNT_MICROS = 1_000_000_000_000_000n;

const PERIOD = enumNames<BudgetPeriod, BudgetPeriodValue>(BudgetPeriodSchema);
export const CHECK_REASON_TO_PROTO: Record<BudgetCheckReasonValue, BudgetCheckReason> = {
  no_budget_set: BudgetCheckReason.NO_BUDGET_SET,
  within_budget: BudgetCheckReason.WITHIN_BUDGET,
  alert_threshold_reached: BudgetCheckReason.ALERT_THRESHOLD_REACHED,
  budget_exceeded: BudgetCheckReason.BUDGET_EXCEEDED,
};

function budgetToProto(row: BudgetRow): Budget {
  return create(BudgetSchema, {
    limitMicros: row.limit_micros,
    spentMicros: row.spent_micros,
    reservedMicros: row.reserved_micros,
    period: PERIOD.valueOf(row.period),
    periodStart: timestampFromDate(row.period_start),
    ...(row.period_end ? { periodEnd: timestampFromDate(row.period_end) } : {}),
    hardLimit: row.hard_limit,
    alertThreshold: row.alert_threshold,
    createdAt: timestampFromDate(row.created_at),
    updatedAt: timestampFromDate(row.updated_at),
  });
}

export function budgetCheckToProto(check: BudgetCheckResult, figures: BudgetFigures): BudgetCheck {
  return create(BudgetCheckSchema, {
    allowed: check.allowed,
    reason: CHECK_REASON_TO_PROTO[check.reason],
    limitMicros: figures.limitMicros,
    spentMicros: figures.spentMicros,
    reservedMicros: figures.reservedMicros,
    remainingMicros: check.remainingMicros,
    percentUsed: check.percentUsed,
    warning: check.warning,
  });
}

function amountWithinRange(field: string, value: bigint): bigint {
  if (value > MAX_AMOUNT_MICROS) throw invalidField(field, "must be at most 10^15 micro-dollars");
  return value;
}

/**
 * GET/POST /budget, POST /budget/check, and the runtime's internal Reserve / Settle / Release.
 * The store makes each change atomic; Reserve / Settle / Release go through the service's
 * BudgetBatcher, which sends concurrent calls as one batch (each caller still gets its own
 * outcome). These methods add the tenant (from the verified context only) and the mapping to the
 * contract.
 */
export class BudgetHandlers {
  constructor(
    private readonly db: Kysely<GovernanceDatabase>,
    readonly defaults: BudgetDefaults,
    private readonly batcher: BudgetBatcher,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async getBudget(_req: GetBudgetRequest, ctx: HandlerContext): Promise<GetBudgetResponse> {
    const { tenantId } = principalOf(ctx);
    const now = this.clock();
    const row = await findBudget(this.db, tenantId, now);
    if (!row) throw notFound("budget");
    const stats = budgetStats({ ...figuresOf(row), periodStart: row.period_start, periodEnd: row.period_end }, now);
    return create(GetBudgetResponseSchema, { budget: budgetToProto(row), stats: create(BudgetStatsSchema, stats) });
  }

  async setBudget(req: SetBudgetRequest, ctx: HandlerContext): Promise<SetBudgetResponse> {
    const tenantId = tenantWide(principalOf(ctx), "the budget");
    const period = PERIOD.nameOf(req.period);
    if (req.alertThreshold !== undefined && !Number.isFinite(req.alertThreshold)) throw invalidField("alert_threshold", "must be a number between 0 and 1");
    const row = await upsertBudget(
      this.db,
      tenantId,
      {
        limitMicros: req.limitMicros,
        ...(period ? { period } : {}),
        ...(req.hardLimit !== undefined ? { hardLimit: req.hardLimit } : {}),
        ...(req.alertThreshold !== undefined ? { alertThreshold: req.alertThreshold } : {}),
      },
      this.clock(),
    );
    return create(SetBudgetResponseSchema, { budget: budgetToProto(row) });
  }

  async checkBudget(req: CheckBudgetRequest, ctx: HandlerContext): Promise<CheckBudgetResponse> {
    const { tenantId } = principalOf(ctx);
    const estimate = amountWithinRange("estimated_cost_micros", req.estimatedCostMicros);
    const { figures, ...check } = await checkBudget(this.db, tenantId, estimate, this.defaults, this.clock());
    return create(CheckBudgetResponseSchema, { check: budgetCheckToProto(check, figures) });
  }

  async reserveBudget(req: ReserveBudgetRequest, ctx: HandlerContext): Promise<ReserveBudgetResponse> {
    const { tenantId } = principalOf(ctx);
    const amountMicros = amountWithinRange("amount_micros", req.amountMicros);
    const outcome = await this.batcher.reserve(tenantId, {
      executionId: req.executionId,
      traceId: req.traceId,
      amountMicros,
      ttlMs: Number(req.ttlMs),
      defaults: this.defaults,
      now: this.clock(),
    });
    if (outcome.status === "denied") {
      throw clasperError(Code.ResourceExhausted, outcome.check.warning || "hard budget would be exceeded", { reason: "budget_exceeded", httpStatus: 402 });
    }
    return create(ReserveBudgetResponseSchema, {
      reservationId: outcome.reservation.reservation_id,
      check: budgetCheckToProto(outcome.check, outcome.figures),
      expiresAt: timestampFromDate(outcome.reservation.expires_at),
    });
  }

  async settleBudget(req: SettleBudgetRequest, ctx: HandlerContext): Promise<SettleBudgetResponse> {
    const principal = principalOf(ctx);
    const { tenantId } = principal;
    const actualMicros = amountWithinRange("actual_micros", req.actualMicros);
    const outcome = await this.batcher.settle(tenantId, { reservationId: req.reservationId, actualMicros, model: req.model, now: this.clock() });
    if (outcome.status === "not_found") throw notFound("reservation", "reservation_id");
    if (outcome.status === "released") {
      throw failedPrecondition(`reservation ${req.reservationId} was released without spend and cannot be settled`, "reservation_released");
    }
    // After the settlement's own commit: a failed append fails the call, and the caller's retry
    // settles nothing twice (idempotent by reservation) and appends once (by idempotency key).
    if (req.settledAudit) await appendCallerAudit(this.db, principal, req.settledAudit, "settled_audit.event_type");
    return create(SettleBudgetResponseSchema, outcome.settlement);
  }

  async releaseBudget(req: ReleaseBudgetRequest, ctx: HandlerContext): Promise<ReleaseBudgetResponse> {
    const { tenantId } = principalOf(ctx);
    const outcome = await this.batcher.release(tenantId, req.reservationId, req.reason, this.clock());
    if (outcome.status === "not_found") throw notFound("reservation", "reservation_id");
    return create(ReleaseBudgetResponseSchema, { releasedMicros: outcome.releasedMicros });
  }
}
