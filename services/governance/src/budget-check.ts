import type { BudgetPeriodValue } from "./store/schema-budgets.js";

/** A budget's figures for the current period (all money in micro-dollars). */
export interface BudgetFigures {
  limitMicros: bigint;
  spentMicros: bigint;
  reservedMicros: bigint;
  hardLimit: boolean;
  /** 0..1 */
  alertThreshold: number;
}

/** What a tenant without a budget row gets on its first reservation (CLASPER_DEFAULT_BUDGET_*). */
export interface BudgetDefaults {
  limitMicros: bigint;
  hardLimit: boolean;
  period: BudgetPeriodValue;
  alertThreshold: number;
}

/** $1,000,000 a month, soft: tracks spend and warns, never blocks, until an operator sets a budget. */
export const DEFAULT_BUDGET: BudgetDefaults = {
  limitMicros: 1_000_000_000_000n,
  hardLimit: false,
  period: "monthly",
  alertThreshold: 0.8,
};

export type BudgetCheckReasonValue = "no_budget_set" | "within_budget" | "alert_threshold_reached" | "budget_exceeded";

export interface BudgetCheckResult {
  allowed: boolean;
  reason: BudgetCheckReasonValue;
  /** limit − spent − reserved before the estimate (negative after a soft overrun). */
  remainingMicros: bigint;
  /** (spent + reserved + estimate) / limit × 100. */
  percentUsed: number;
  warning: string;
}

/**
 * Would an execution costing `estimate` fit? The one place the rule is written in JavaScript; the
 * reservation statement applies the same rule (`not hard or spent + reserved + amount <= limit`)
 * inside PostgreSQL, where it is atomic, and uses this only to describe its answer.
 */
export function evaluateBudget(budget: BudgetFigures, estimate: bigint): BudgetCheckResult {
  const remainingMicros = budget.limitMicros - budget.spentMicros - budget.reservedMicros;
  const used = budget.spentMicros + budget.reservedMicros + estimate;
  const percentUsed = percentOf(used, budget.limitMicros);
  if (used > budget.limitMicros) {
    return {
      allowed: !budget.hardLimit,
      reason: "budget_exceeded",
      remainingMicros,
      percentUsed,
      warning: budget.hardLimit
        ? `Budget exceeded: ${formatMicros(estimate)} requested, ${formatMicros(remainingMicros)} remaining (hard limit)`
        : `Budget exceeded - soft limit: usage would reach ${percentUsed.toFixed(1)}%`,
    };
  }
  if (used > 0n && percentUsed >= budget.alertThreshold * 100) {
    return {
      allowed: true,
      reason: "alert_threshold_reached",
      remainingMicros,
      percentUsed,
      warning: `Budget usage at ${percentUsed.toFixed(1)}% - approaching limit`,
    };
  }
  return { allowed: true, reason: "within_budget", remainingMicros, percentUsed, warning: "" };
}

export function percentOf(part: bigint, whole: bigint): number {
  return whole > 0n ? (Number(part) / Number(whole)) * 100 : 0;
}

/** `$12.345678` from micro-dollars, exact. */
export function formatMicros(micros: bigint): string {
  const sign = micros < 0n ? "-" : "";
  const abs = micros < 0n ? -micros : micros;
  return `${sign}$${abs / 1_000_000n}.${String(abs % 1_000_000n).padStart(6, "0")}`;
}

/** GET /budget's derived figures (seed §5.8 stats, with reservations counted as used). */
export interface BudgetStatsResult {
  remainingMicros: bigint;
  percentUsed: number;
  averageDailySpendMicros: bigint;
  projectedPeriodSpendMicros: bigint;
  daysRemaining: number;
}

const DAY_MS = 86_400_000;

export function budgetStats(budget: BudgetFigures & { periodStart: Date; periodEnd: Date | null }, now: Date): BudgetStatsResult {
  const elapsedDays = Math.max(1, Math.ceil((now.getTime() - budget.periodStart.getTime()) / DAY_MS));
  const daysRemaining = budget.periodEnd ? Math.max(0, Math.ceil((budget.periodEnd.getTime() - now.getTime()) / DAY_MS)) : 0;
  const averageDailySpendMicros = budget.spentMicros / BigInt(elapsedDays);
  return {
    remainingMicros: budget.limitMicros - budget.spentMicros - budget.reservedMicros,
    percentUsed: percentOf(budget.spentMicros + budget.reservedMicros, budget.limitMicros),
    averageDailySpendMicros,
    projectedPeriodSpendMicros: budget.spentMicros + averageDailySpendMicros * BigInt(daysRemaining),
    daysRemaining,
  };
}
