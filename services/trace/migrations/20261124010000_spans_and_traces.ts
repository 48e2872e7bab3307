import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// Every key and index leads with tenant_id, then time, so a tenant's listing is an index range
// scan and retention deletes a time range. docs/TRACING.md explains how to switch on monthly
// partitioning of `spans` and `traces` by time for large installations.
export async function up(db: Kysely<any>): Promise<void> {
  // Spans as received (after redaction). Idempotent by (tenant, trace, span).
  await db.schema
    .createTable("spans")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("trace_id", "text", (c) => c.notNull())
    .addColumn("span_id", "text", (c) => c.notNull())
    .addColumn("parent_span_id", "text")
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("kind", "smallint", (c) => c.notNull())
    // gen_ai.operation.name (or clasper.governance_decision): which step this span is.
    .addColumn("operation", "text")
    .addColumn("start_time", "timestamptz", (c) => c.notNull())
    .addColumn("end_time", "timestamptz", (c) => c.notNull())
    .addColumn("status_code", "smallint", (c) => c.notNull())
    .addColumn("status_message", "text")
    // Attribute key → value, as data (keys are never object properties in code).
    .addColumn("attributes", "jsonb", (c) => c.notNull())
    .addColumn("events", "jsonb", (c) => c.notNull())
    .addColumn("service_name", "text")
    .addColumn("received_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("spans_pkey", ["tenant_id", "trace_id", "span_id"])
    .execute();
  await db.schema.createIndex("spans_tenant_start").on("spans").columns(["tenant_id", "start_time"]).execute();

  // One row per trace, the summary assembled from its spans; steps are read from `spans`.
  await db.schema
    .createTable("traces")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("trace_id", "text", (c) => c.notNull())
    .addColumn("started_at", "timestamptz", (c) => c.notNull())
    .addColumn("completed_at", "timestamptz")
    .addColumn("duration_ms", "bigint", (c) => c.notNull().defaultTo(0))
    // 1 running, 2 success, 3 error, 4 blocked (TraceStatus numbers).
    .addColumn("status", "smallint", (c) => c.notNull())
    .addColumn("execution_id", "text")
    .addColumn("workspace_id", "text")
    .addColumn("environment", "text")
    .addColumn("agent_role", "text")
    .addColumn("user_id", "text")
    .addColumn("model", "text")
    .addColumn("provider", "text")
    .addColumn("workspace_version_hash", "text")
    .addColumn("skill_versions", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("output_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cache_read_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cache_write_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("reasoning_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cost_micros", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("llm_call_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("tool_call_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("span_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("error_code", "text")
    .addColumn("error_message", "text")
    .addColumn("labels", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("task_id", "text")
    .addColumn("document_id", "text")
    .addColumn("message_id", "text")
    .addColumn("risk_score", "integer")
    // RiskLevel numbers: 1 low .. 4 critical.
    .addColumn("risk_level", "smallint")
    .addColumn("decision_id", "text")
    .addColumn("redaction_types", sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn("source", "text")
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("traces_pkey", ["tenant_id", "trace_id"])
    .execute();
  await sql`create index traces_tenant_started on traces (tenant_id, started_at desc, trace_id desc)`.execute(db);
  await sql`create index traces_tenant_workspace on traces (tenant_id, workspace_id, started_at desc, trace_id desc)`.execute(db);
  await sql`create index traces_tenant_status on traces (tenant_id, status, started_at desc, trace_id desc)`.execute(db);
  await sql`create index traces_labels on traces using gin (labels jsonb_path_ops)`.execute(db);
  await sql`create index traces_task on traces (tenant_id, task_id) where task_id is not null`.execute(db);
  await sql`create index traces_document on traces (tenant_id, document_id) where document_id is not null`.execute(db);
  await sql`create index traces_message on traces (tenant_id, message_id) where message_id is not null`.execute(db);

  await db.schema
    .createTable("trace_annotations")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("annotation_id", "text", (c) => c.notNull())
    .addColumn("trace_id", "text", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("created_by", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("trace_annotations_pkey", ["tenant_id", "annotation_id"])
    .addForeignKeyConstraint("trace_annotations_trace_fk", ["tenant_id", "trace_id"], "traces", ["tenant_id", "trace_id"], (fk) => fk.onDelete("cascade"))
    .execute();
  await db.schema.createIndex("trace_annotations_trace").on("trace_annotations").columns(["tenant_id", "trace_id", "created_at"]).execute();

  // When each tenant's retention was last enforced (GET /retention/stats).
  await db.schema
    .alterTable("retention_policies")
    .addColumn("last_enforced_at", "timestamptz")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("retention_policies").dropColumn("last_enforced_at").execute();
  await db.schema.dropTable("trace_annotations").execute();
  await db.schema.dropTable("traces").execute();
  await db.schema.dropTable("spans").execute();
}
