import { z } from "zod";
import { flag, parseConfig } from "@clasper/core";
import { DEFAULT_BUDGET, type BudgetDefaults } from "./budget-check.js";
import { DEFAULT_RECONCILE_INTERVAL_MS } from "./budget-reconciler.js";

const MAX_LIMIT_MICROS = 1_000_000_000_000_000n;

const budgetConfigShape = {
  /** Limit of the budget a tenant gets on its first reservation when it has none (micro-dollars). */
  CLASPER_DEFAULT_BUDGET_MICROS: z
    .string()
    .regex(/^\d+$/, "must be a whole number of micro-dollars")
    .transform((v) => BigInt(v))
    .refine((v) => v > 0n && v <= MAX_LIMIT_MICROS, "must be between 1 and 10^15")
    .default(DEFAULT_BUDGET.limitMicros.toString()),
  /** true: that default budget denies over the limit; false (default): it only warns. */
  CLASPER_DEFAULT_BUDGET_HARD: flag(DEFAULT_BUDGET.hardLimit),
  CLASPER_DEFAULT_BUDGET_PERIOD: z.enum(["daily", "weekly", "monthly", "none"]).default(DEFAULT_BUDGET.period),
  CLASPER_DEFAULT_BUDGET_ALERT_THRESHOLD: z.coerce.number().min(0).max(1).default(DEFAULT_BUDGET.alertThreshold),
  /** How often expired reservations are released (ms). */
  CLASPER_BUDGET_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(DEFAULT_RECONCILE_INTERVAL_MS),
};

export interface BudgetConfig {
  defaults: BudgetDefaults;
  reconcileIntervalMs: number;
}

/** The budgets area's settings, parsed once from the service environment. */
export function budgetConfig(env: Readonly<Record<string, string | undefined>>): BudgetConfig {
  const parsed = parseConfig(budgetConfigShape, { ...env });
  return {
    defaults: {
      limitMicros: parsed.CLASPER_DEFAULT_BUDGET_MICROS,
      hardLimit: parsed.CLASPER_DEFAULT_BUDGET_HARD,
      period: parsed.CLASPER_DEFAULT_BUDGET_PERIOD,
      alertThreshold: parsed.CLASPER_DEFAULT_BUDGET_ALERT_THRESHOLD,
    },
    reconcileIntervalMs: parsed.CLASPER_BUDGET_RECONCILE_INTERVAL_MS,
  };
}
