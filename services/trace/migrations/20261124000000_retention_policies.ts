import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("retention_policies")
    .addColumn("tenant_id", "text", (c) => c.notNull().primaryKey())
    .addColumn("retention_days", "integer", (c) => c.notNull().check(sql`retention_days between 1 and 3650`))
    .addColumn("sampling_strategy", "text", (c) => c.notNull().check(sql`sampling_strategy in ('full', 'sampled', 'errors_only')`))
    .addColumn("storage_mode", "text", (c) => c.notNull().check(sql`storage_mode in ('full', 'summary', 'minimal')`))
    .addColumn("sample_rate", "double precision", (c) => c.notNull().check(sql`sample_rate >= 0 and sample_rate <= 1`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("retention_policies").execute();
}
