import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { GovernanceDatabase } from "./schema.js";
import type { RedactionRulesTable, RedactionStrategyValue, StoredCustomRule } from "./schema-redaction.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export type RedactionRulesRow = Selectable<RedactionRulesTable>;

export interface RedactionRulesChange {
  enabled: boolean;
  piiPatterns: string[];
  strategy: RedactionStrategyValue;
  customRules: StoredCustomRule[];
}

/** What a tenant that never changed its rules gets: every built-in detector, masked (version 0). */
export const DEFAULT_REDACTION_RULES = {
  enabled: true,
  piiPatterns: [] as string[],
  strategy: "mask",
  customRules: [] as StoredCustomRule[],
} as const satisfies RedactionRulesChange;

export async function findRedactionRules(db: Executor, tenantId: string): Promise<RedactionRulesRow | undefined> {
  return db.selectFrom("redaction_rules").selectAll().where("tenant_id", "=", tenantId).executeTakeFirst();
}

/**
 * Replaces the tenant's rules and bumps their version, in one statement. With expectedVersion
 * > 0 the write happens only if the stored version still equals it (optimistic concurrency;
 * undefined when it does not); with 0 it always happens. Two concurrent unconditional writes each
 * get their own version: the row lock of the upsert orders them.
 */
export async function replaceRedactionRules(
  db: Executor,
  tenantId: string,
  change: RedactionRulesChange,
  updatedBy: string,
  expectedVersion = 0n,
): Promise<RedactionRulesRow | undefined> {
  const values = {
    enabled: change.enabled,
    pii_patterns: JSON.stringify(change.piiPatterns),
    strategy: change.strategy,
    custom_rules: JSON.stringify(change.customRules),
    updated_at: new Date(),
    updated_by: updatedBy,
  };
  if (expectedVersion > 0n) {
    return db
      .updateTable("redaction_rules")
      .set({ ...values, version: sql<bigint>`version + 1` })
      .where("tenant_id", "=", tenantId)
      .where("version", "=", expectedVersion)
      .returningAll()
      .executeTakeFirst();
  }
  return db
    .insertInto("redaction_rules")
    .values({ tenant_id: tenantId, ...values, version: 1n })
    .onConflict((oc) => oc.column("tenant_id").doUpdateSet({ ...values, version: sql<bigint>`redaction_rules.version + 1` }))
    .returningAll()
    .executeTakeFirstOrThrow();
}
