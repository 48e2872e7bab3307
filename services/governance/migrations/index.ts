import type { Migration } from "kysely";
import * as budgets from "./20261124020000_budgets.js";
import * as auditLog from "./20261124021000_audit_log.js";
import * as redactionRulesAndPriceOverrides from "./20261124022000_redaction_rules_and_price_overrides.js";
import * as policiesAndDecisions from "./20261124023000_policies_and_decisions.js";
import * as budgetFunctions from "./20261126000000_budget_functions.js";
import * as auditAppendFunction from "./20261126020000_audit_append_function.js";
import * as budgetBatchFunctions from "./20261127000000_budget_batch_functions.js";
import * as budgetBatchCall from "./20261127010000_budget_batch_call.js";
import * as budgetDomains from "./20261127020000_budget_domains.js";
import * as reservationKeyLookups from "./20261128000000_reservation_key_lookups.js";

/** Every migration of the governance service, in order. */
export const migrations: Record<string, Migration> = {
  "20261124020000_budgets": budgets,
  "20261124021000_audit_log": auditLog,
  "20261124022000_redaction_rules_and_price_overrides": redactionRulesAndPriceOverrides,
  "20261124023000_policies_and_decisions": policiesAndDecisions,
  "20261126000000_budget_functions": budgetFunctions,
  "20261126020000_audit_append_function": auditAppendFunction,
  "20261127000000_budget_batch_functions": budgetBatchFunctions,
  "20261127010000_budget_batch_call": budgetBatchCall,
  "20261127020000_budget_domains": budgetDomains,
  "20261128000000_reservation_key_lookups": reservationKeyLookups,
};
