import type { AuditTables } from "./schema-audit.js";
import type { BudgetTables } from "./schema-budgets.js";
import type { PolicyTables } from "./schema-policies.js";
import type { RedactionTables } from "./schema-redaction.js";

/**
 * Tables of the `governance` schema, as the migrations create them. Each area declares its own
 * tables in schema-<area>.ts; this interface joins them for the service's Kysely handle.
 */
export interface GovernanceDatabase extends BudgetTables, AuditTables, PolicyTables, RedactionTables {}
