import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("redaction_rules")
    .addColumn("tenant_id", "text", (c) => c.notNull().primaryKey())
    .addColumn("enabled", "boolean", (c) => c.notNull())
    .addColumn("pii_patterns", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`).check(sql`jsonb_typeof(pii_patterns) = 'array'`))
    .addColumn("strategy", "text", (c) => c.notNull().check(sql`strategy in ('mask', 'hash', 'drop', 'summarize')`))
    .addColumn("custom_rules", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`).check(sql`jsonb_typeof(custom_rules) = 'array'`))
    .addColumn("version", "bigint", (c) => c.notNull().check(sql`version > 0`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_by", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("model_price_overrides")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("provider", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("model", "text", (c) => c.notNull().check(sql`length(model) between 1 and 200`))
    .addColumn("input_per_mtok_micros", "bigint", (c) => c.notNull().check(sql`input_per_mtok_micros >= 0`))
    .addColumn("output_per_mtok_micros", "bigint", (c) => c.notNull().check(sql`output_per_mtok_micros >= 0`))
    .addColumn("cache_read_per_mtok_micros", "bigint", (c) => c.check(sql`cache_read_per_mtok_micros >= 0`))
    .addColumn("cache_write_per_mtok_micros", "bigint", (c) => c.check(sql`cache_write_per_mtok_micros >= 0`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("model_price_overrides_pkey", ["tenant_id", "provider", "model"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("model_price_overrides").execute();
  await db.schema.dropTable("redaction_rules").execute();
}
