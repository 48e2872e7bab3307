import type { ConnectRouter } from "@connectrpc/connect";
import type { ServiceDeps } from "@clasper/service-kit";
import { AuditHandlers } from "./handlers/audit.js";
import { BudgetBatcher } from "./budget-batcher.js";
import { startBudgetReconciler } from "./budget-reconciler.js";
import { budgetConfig } from "./config-budgets.js";
import { BudgetHandlers } from "./handlers/budgets.js";
import { decisionConfig } from "./decision-token.js";
import { DecisionHandlers } from "./handlers/decisions.js";
import { PolicyHandlers } from "./handlers/policies.js";
import { PreflightHandlers } from "./handlers/preflight.js";
import { budgetReader, ForecastHandlers } from "./handlers/forecast.js";
import { MeHandlers } from "./handlers/me.js";
import { RedactionRulesHandlers } from "./handlers/redaction-rules.js";
import { RiskHandlers } from "./handlers/risk.js";
import { routes } from "./routes.js";
import type { GovernanceDatabase } from "./store/schema.js";

export const GOVERNANCE_SCHEMA = "governance";

/** Wires the governance service's stores and handlers; never listens. */
export function build(deps: ServiceDeps): (router: ConnectRouter) => void {
  if (!deps.db) throw new Error("the governance service needs a database");
  const db = deps.db.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  void db;
  const decisions = decisionConfig(deps.env, deps.logger);
  const budgets = budgetConfig(deps.env);
  // Releases expired reservations; unref'd, so it never holds the process open at shutdown.
  startBudgetReconciler(db, { intervalMs: budgets.reconcileIntervalMs, logger: deps.logger });
  // One batcher for every reservation, settlement and release of this process.
  const budgetBatcher = new BudgetBatcher(db, { logger: deps.logger });
  // Each area adds its handler instance to this list.
  const handlers: object[] = [
    new RiskHandlers(),
    new BudgetHandlers(db, budgets.defaults, budgetBatcher),
    new ForecastHandlers(db, budgetReader(budgets.defaults)),
    new MeHandlers(),
    new RedactionRulesHandlers(db),
    new AuditHandlers(db),
    new PolicyHandlers(db),
    new DecisionHandlers(db, decisions.tokens),
    // Preflight reserves with the same default budget the budget handlers give a new tenant.
    new PreflightHandlers({ db, budgets: budgetBatcher, tokens: decisions.tokens, decisionTtlSeconds: decisions.decisionTtlSeconds, budgetDefaults: budgets.defaults }),
  ];
  return routes(...handlers);
}
