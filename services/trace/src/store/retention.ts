import type { Kysely, Selectable, Transaction } from "kysely";
import type { RetentionPoliciesTable, SamplingStrategyValue, StorageModeValue, TraceDatabase } from "./schema.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

export type RetentionPolicyRow = Selectable<RetentionPoliciesTable>;

export interface RetentionPolicyChange {
  retention_days?: number;
  sampling_strategy?: SamplingStrategyValue;
  storage_mode?: StorageModeValue;
  sample_rate?: number;
}

/** What a tenant that never set a policy gets. */
export const DEFAULT_RETENTION = {
  retention_days: 90,
  sampling_strategy: "full",
  storage_mode: "full",
  sample_rate: 0.1,
} as const satisfies Required<RetentionPolicyChange>;

export async function findRetentionPolicy(db: Executor, tenantId: string): Promise<RetentionPolicyRow | undefined> {
  return db.selectFrom("retention_policies").selectAll().where("tenant_id", "=", tenantId).executeTakeFirst();
}

/**
 * Creates the tenant's policy or changes the given fields of it, in one statement: fields not
 * given keep their current value (or the default on first write), so concurrent partial updates
 * never lose each other's changes.
 */
export async function upsertRetentionPolicy(db: Executor, tenantId: string, change: RetentionPolicyChange): Promise<RetentionPolicyRow> {
  const insert = { tenant_id: tenantId, ...DEFAULT_RETENTION, ...change };
  return db
    .insertInto("retention_policies")
    .values(insert)
    .onConflict((oc) =>
      oc.column("tenant_id").doUpdateSet((eb) => ({
        retention_days: change.retention_days ?? eb.ref("retention_policies.retention_days"),
        sampling_strategy: change.sampling_strategy ?? eb.ref("retention_policies.sampling_strategy"),
        storage_mode: change.storage_mode ?? eb.ref("retention_policies.storage_mode"),
        sample_rate: change.sample_rate ?? eb.ref("retention_policies.sample_rate"),
        updated_at: new Date(),
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}
