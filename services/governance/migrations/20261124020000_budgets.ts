import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("budgets")
    .addColumn("tenant_id", "text", (c) => c.notNull().primaryKey())
    .addColumn("limit_micros", "int8", (c) => c.notNull().check(sql`limit_micros > 0`))
    .addColumn("spent_micros", "int8", (c) => c.notNull().defaultTo(0).check(sql`spent_micros >= 0`))
    // Sum of the open reservations' amounts; the check turns an accounting bug into an error.
    .addColumn("reserved_micros", "int8", (c) => c.notNull().defaultTo(0).check(sql`reserved_micros >= 0`))
    .addColumn("period", "text", (c) => c.notNull().check(sql`period in ('daily', 'weekly', 'monthly', 'none')`))
    .addColumn("period_start", "timestamptz", (c) => c.notNull())
    .addColumn("period_end", "timestamptz")
    .addColumn("hard_limit", "boolean", (c) => c.notNull())
    .addColumn("alert_threshold", "float8", (c) => c.notNull().check(sql`alert_threshold >= 0 and alert_threshold <= 1`))
    // Created by the first reservation from the configured default, not by POST /budget.
    .addColumn("is_default", "boolean", (c) => c.notNull().defaultTo(false))
    // period_start of the last period that emitted budget_warning / budget_exceeded (once per period).
    .addColumn("warned_period_start", "timestamptz")
    .addColumn("exceeded_period_start", "timestamptz")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint("budgets_period_end_matches_period", sql`(period = 'none') = (period_end is null)`)
    .execute();

  await db.schema
    .createTable("budget_reservations")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("reservation_id", "text", (c) => c.notNull())
    .addColumn("execution_id", "text", (c) => c.notNull())
    .addColumn("trace_id", "text")
    .addColumn("amount_micros", "int8", (c) => c.notNull().check(sql`amount_micros >= 0`))
    .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('open', 'settled', 'released', 'expired')`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("closed_at", "timestamptz")
    .addColumn("release_reason", "text")
    // The settlement, kept so a repeated settle answers exactly as the first one did.
    .addColumn("actual_micros", "int8")
    .addColumn("spent_after_micros", "int8")
    .addColumn("remaining_after_micros", "int8")
    .addColumn("warning", "text")
    .addColumn("threshold_crossed", "boolean")
    .addColumn("exceeded", "boolean")
    .addPrimaryKeyConstraint("budget_reservations_pk", ["tenant_id", "reservation_id"])
    .addUniqueConstraint("budget_reservations_execution_unique", ["tenant_id", "execution_id"])
    .execute();

  // Only open reservations can expire; the partial index serves the reconciler and the lazy
  // per-tenant release inside Reserve, and stays as small as the set of running executions.
  await db.schema
    .createIndex("budget_reservations_open_expiry")
    .on("budget_reservations")
    .columns(["tenant_id", "expires_at"])
    .where(sql.ref("status"), "=", "open")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("budget_reservations").execute();
  await db.schema.dropTable("budgets").execute();
}
