import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("policies")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("policy_id", "text", (c) => c.notNull())
    // Scope columns are denormalised out of the policy so candidate selection is an index scan.
    .addColumn("workspace_id", "text")
    .addColumn("environment", "text")
    .addColumn("subject_type", "text", (c) =>
      c.notNull().check(sql`subject_type in ('adapter', 'tool', 'skill', 'environment', 'risk', 'cost', 'agent')`),
    )
    .addColumn("subject_name", "text")
    .addColumn("conditions", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("effect", "text", (c) => c.notNull().check(sql`effect in ('allow', 'deny', 'require_approval')`))
    .addColumn("explanation", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("precedence", "integer", (c) => c.notNull().defaultTo(0).check(sql`precedence between -1000 and 1000`))
    .addColumn("enabled", "boolean", (c) => c.notNull().defaultTo(true))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_by", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("policies_pkey", ["tenant_id", "policy_id"])
    .execute();
  await db.schema
    .createIndex("policies_candidates_idx")
    .on("policies")
    .columns(["tenant_id", "enabled", "precedence desc", "updated_at desc"])
    .execute();

  await db.schema
    .createTable("decisions")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("decision_id", "text", (c) => c.notNull())
    // "expired" is not stored: a pending row past expires_at is expired (see store/decisions.ts).
    .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('pending', 'approved', 'denied')`))
    .addColumn("execution_id", "text", (c) => c.notNull())
    .addColumn("trace_id", "text")
    .addColumn("workspace_id", "text")
    .addColumn("environment", "text")
    .addColumn("tool_name", "text")
    .addColumn("required_role", "text", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("request_snapshot", "jsonb")
    .addColumn("granted_scope", "jsonb", (c) => c.notNull())
    .addColumn("matched_policies", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("decision_trace", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("explanation", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("reasons", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("requested_by", "text", (c) => c.notNull())
    .addColumn("resolution_action", "text", (c) => c.check(sql`resolution_action in ('approve', 'deny', 'approve_with_override')`))
    .addColumn("resolved_by", "text")
    .addColumn("resolved_role", "text")
    .addColumn("resolution_justification", "text")
    .addColumn("override_reason_code", "text")
    .addColumn("resolved_at", "timestamptz")
    .addColumn("token_jti", "text")
    .addColumn("token_issued_at", "timestamptz")
    .addColumn("token_expires_at", "timestamptz")
    .addColumn("token_used_at", "timestamptz")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("decisions_pkey", ["tenant_id", "decision_id"])
    // A resolved decision has its resolver; an approved one has its token.
    .addCheckConstraint("decisions_resolution_check", sql`(status = 'pending') = (resolved_at is null)`)
    .addCheckConstraint("decisions_token_check", sql`(status = 'approved') = (token_jti is not null)`)
    .execute();
  await db.schema.createIndex("decisions_status_idx").on("decisions").columns(["tenant_id", "status", "created_at"]).execute();
  await db.schema.createIndex("decisions_execution_idx").on("decisions").columns(["tenant_id", "execution_id"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("decisions").execute();
  await db.schema.dropTable("policies").execute();
}
