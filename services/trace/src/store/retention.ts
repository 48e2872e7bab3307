import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import { withTransaction } from "@clasper/db";
import type { RetentionPoliciesTable, RetentionRunsTable, SamplingStrategyValue, StorageModeValue, TraceDatabase } from "./schema.js";

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

/** Traces (with their spans and annotations) deleted per transaction by enforceRetention. */
export const RETENTION_BATCH_SIZE = 1000;

/** The tenant's traces started before `cutoff`. */
export async function countTracesBefore(db: Executor, tenantId: string, cutoff: Date): Promise<bigint> {
  const row = await db
    .selectFrom("traces")
    .select((eb) => eb.fn.countAll<string | number | bigint>().as("n"))
    .where("tenant_id", "=", tenantId)
    .where("started_at", "<", cutoff)
    .executeTakeFirstOrThrow();
  return BigInt(row.n);
}

/**
 * Deletes the tenant's traces started before `cutoff` with their spans (annotations cascade),
 * in batches of `batchSize` traces, one short transaction each, so a tenant with millions of old
 * traces neither holds one giant transaction nor blocks ingest for its duration. Then removes the
 * tenant's orphan spans (no trace row) older than the cutoff. Returns the traces deleted.
 */
export async function deleteTracesBefore(db: Kysely<TraceDatabase>, tenantId: string, cutoff: Date, batchSize = RETENTION_BATCH_SIZE): Promise<bigint> {
  let deleted = 0n;
  for (;;) {
    const n = await withTransaction(db, async (trx) => {
      const batch = await trx
        .selectFrom("traces")
        .select("trace_id")
        .where("tenant_id", "=", tenantId)
        .where("started_at", "<", cutoff)
        .orderBy("started_at")
        .limit(batchSize)
        .execute();
      if (batch.length === 0) return 0;
      const ids = batch.map((r) => r.trace_id);
      await trx.deleteFrom("spans").where("tenant_id", "=", tenantId).where("trace_id", "in", ids).execute();
      const result = await trx.deleteFrom("traces").where("tenant_id", "=", tenantId).where("trace_id", "in", ids).executeTakeFirst();
      return Number(result.numDeletedRows);
    });
    deleted += BigInt(n);
    if (n < batchSize) break;
  }
  for (;;) {
    const result = await db
      .deleteFrom("spans")
      .where("tenant_id", "=", tenantId)
      .where((eb) =>
        eb(
          eb.refTuple("trace_id", "span_id"),
          "in",
          eb
            .selectFrom("spans as s")
            .select(["s.trace_id", "s.span_id"])
            .where("s.tenant_id", "=", tenantId)
            .where("s.start_time", "<", cutoff)
            .where((inner) =>
              inner.not(
                inner.exists(
                  inner
                    .selectFrom("traces as t")
                    .select(sql<number>`1`.as("one"))
                    .whereRef("t.tenant_id", "=", "s.tenant_id")
                    .whereRef("t.trace_id", "=", "s.trace_id"),
                ),
              ),
            )
            .limit(batchSize)
            .$asTuple("trace_id", "span_id"),
        ),
      )
      .executeTakeFirst();
    if (Number(result.numDeletedRows) < batchSize) break;
  }
  return deleted;
}

export type RetentionRunRow = Selectable<RetentionRunsTable>;

export async function recordRetentionRun(db: Executor, tenantId: string, run: { at: Date; cutoff: Date; deleted: bigint }): Promise<void> {
  const values = { last_enforced_at: run.at, last_cutoff: run.cutoff, last_deleted: run.deleted };
  await db
    .insertInto("retention_runs")
    .values({ tenant_id: tenantId, ...values })
    .onConflict((oc) => oc.column("tenant_id").doUpdateSet(values))
    .execute();
}

export async function findRetentionRun(db: Executor, tenantId: string): Promise<RetentionRunRow | undefined> {
  return db.selectFrom("retention_runs").selectAll().where("tenant_id", "=", tenantId).executeTakeFirst();
}

/**
 * Stored traces of the tenant (of one workspace when `workspaceId` is given), how many started
 * before `cutoff`, and the oldest start.
 */
export async function retentionCounts(db: Executor, tenantId: string, cutoff: Date, workspaceId?: string): Promise<{ total: bigint; old: bigint; oldest: Date | null }> {
  const row = await db
    .selectFrom("traces")
    .select([
      sql<bigint>`count(*)`.as("total"),
      sql<bigint>`count(*) filter (where started_at < ${cutoff})`.as("old"),
      sql<Date | null>`min(started_at)`.as("oldest"),
    ])
    .where("tenant_id", "=", tenantId)
    .$if(workspaceId !== undefined, (q) => q.where("workspace_id", "=", workspaceId!))
    .executeTakeFirstOrThrow();
  return { total: BigInt(row.total), old: BigInt(row.old), oldest: row.oldest };
}
