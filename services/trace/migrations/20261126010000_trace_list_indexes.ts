import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// GET /traces filters that the first listing indexes (tenant + started_at, + workspace, + status)
// do not serve. A filter without its own index walks the tenant's traces newest first and throws
// away the rows that do not match, and the capped total does the same until it has counted 1,000:
// for a value in 1% of a large tenant's traces that is ~100,000 rows read per request
// (scripts/bench/trace-query.mjs: 0.4-0.6 s on 1M traces). Each index here leads with the tenant
// and the equality filter, then the listing's sort key, so a page and its capped count read only
// matching entries, in order:
// - workspace + status (optionally + time range), the "errors in my workspace" view;
// - agent role;
// - model.
// Each costs index maintenance on every insert and non-HOT update of a trace; docs/PERFORMANCE.md
// ("Trace queries") records the measured cost. On a large existing table the build takes a write
// lock for its duration; operators with millions of traces can create the same indexes
// CONCURRENTLY beforehand (same names), and this migration then skips them.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index if not exists traces_tenant_workspace_status on traces (tenant_id, workspace_id, status, started_at desc, trace_id desc)`.execute(db);
  await sql`create index if not exists traces_tenant_agent_role on traces (tenant_id, agent_role, started_at desc, trace_id desc)`.execute(db);
  await sql`create index if not exists traces_tenant_model on traces (tenant_id, model, started_at desc, trace_id desc)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists traces_tenant_model`.execute(db);
  await sql`drop index if exists traces_tenant_agent_role`.execute(db);
  await sql`drop index if exists traces_tenant_workspace_status`.execute(db);
}
