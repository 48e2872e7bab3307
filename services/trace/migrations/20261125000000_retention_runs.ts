import { type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// When retention was last enforced moves from the policy row to its own table: a tenant that
// never set a policy is enforced too (with the defaults), and recording that on the policy table
// would create a row and turn its defaults into an explicitly set policy (is_default false).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("retention_runs")
    .addColumn("tenant_id", "text", (c) => c.notNull().primaryKey())
    .addColumn("last_enforced_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_cutoff", "timestamptz", (c) => c.notNull())
    .addColumn("last_deleted", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.alterTable("retention_policies").dropColumn("last_enforced_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("retention_policies").addColumn("last_enforced_at", "timestamptz").execute();
  await db.schema.dropTable("retention_runs").execute();
}
