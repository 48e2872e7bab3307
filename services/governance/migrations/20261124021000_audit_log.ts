import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// The tamper-evident audit log (docs/GOVERNANCE.md ("The audit log")). Each tenant's entries form a hash chain
// ordered by a gap-free `seq`; `audit_heads` holds each tenant's last (seq, hash). An append locks
// the head row, so appends of one tenant are serialized and appends of different tenants are not.
//
// The triggers make the chain's rules hold in the database, not only in the application:
// - audit_log refuses UPDATE, DELETE and TRUNCATE;
// - an INSERT must continue the head (seq = head + 1, prev_hash = head hash) and advances it;
// - a head changes only through that INSERT, never goes back, and is never deleted.
// Superusers and members of the role `clasper_audit_maintenance` (created by a DBA when needed,
// never by the application) are exempt from the refusals, for repairs under supervision.
//
// Functions are created with `set search_path from current`: they keep the service schema this
// migration runs in (migrateSchema sets it), whatever search_path the caller's session has.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("audit_heads")
    .addColumn("tenant_id", "text", (c) => c.notNull().primaryKey())
    .addColumn("seq", "bigint", (c) => c.notNull().defaultTo(0).check(sql`seq >= 0`))
    .addColumn("hash", "text")
    .execute();

  await db.schema
    .createTable("audit_log")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("seq", "bigint", (c) => c.notNull().check(sql`seq >= 1`))
    .addColumn("prev_hash", "text")
    .addColumn("hash", "text", (c) => c.notNull().check(sql`hash ~ '^sha256:[0-9a-f]{64}$'`))
    .addColumn("event_type", "text", (c) => c.notNull())
    .addColumn("workspace_id", "text")
    .addColumn("trace_id", "text")
    .addColumn("actor", "text")
    .addColumn("data", "jsonb", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    // Not hashed: lets a retried AppendAudit return the entry it already appended.
    .addColumn("idempotency_key", "text")
    .addPrimaryKeyConstraint("audit_log_pkey", ["tenant_id", "seq"])
    .execute();
  await sql`create unique index audit_log_idempotency on audit_log (tenant_id, idempotency_key) where idempotency_key is not null`.execute(db);
  await sql`create index audit_log_workspace on audit_log (tenant_id, workspace_id, seq desc) where workspace_id is not null`.execute(db);
  await sql`create index audit_log_trace on audit_log (tenant_id, trace_id, seq desc) where trace_id is not null`.execute(db);
  await sql`create index audit_log_type on audit_log (tenant_id, event_type, seq desc)`.execute(db);
  await sql`create index audit_log_created on audit_log (tenant_id, created_at)`.execute(db);

  await sql`
    create function audit_maintainer() returns boolean
    language sql stable
    set search_path from current
    as $$
      select coalesce((select rolsuper from pg_roles where rolname = current_user), false)
          or (exists (select 1 from pg_roles where rolname = 'clasper_audit_maintenance')
              and pg_has_role(current_user, 'clasper_audit_maintenance', 'MEMBER'))
    $$
  `.execute(db);

  await sql`
    create function audit_log_refuse_change() returns trigger
    language plpgsql
    set search_path from current
    as $$
    begin
      if audit_maintainer() then
        if tg_op = 'DELETE' then return old; end if;
        return new;
      end if;
      raise exception 'audit_log is append-only: % refused for role %', tg_op, current_user
        using errcode = 'insufficient_privilege',
              hint = 'superusers and members of clasper_audit_maintenance are exempt';
    end
    $$
  `.execute(db);
  await sql`
    create trigger audit_log_no_update_delete before update or delete on audit_log
    for each row execute function audit_log_refuse_change()
  `.execute(db);
  await sql`
    create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_refuse_change()
  `.execute(db);

  // The application already holds the head's row lock (it read the head to compute the hash), so
  // one conditional update both checks the continuation and advances the head.
  await sql`
    create function audit_log_advance_head() returns trigger
    language plpgsql
    set search_path from current
    as $$
    begin
      update audit_heads set seq = new.seq, hash = new.hash
      where tenant_id = new.tenant_id and seq = new.seq - 1 and hash is not distinct from new.prev_hash;
      if not found then
        raise exception 'audit_log entry (%, %) does not continue the head of its chain', new.tenant_id, new.seq
          using errcode = 'integrity_constraint_violation';
      end if;
      return new;
    end
    $$
  `.execute(db);
  await sql`
    create trigger audit_log_chain before insert on audit_log
    for each row execute function audit_log_advance_head()
  `.execute(db);

  // A new head starts empty; otherwise a head changes only from audit_log_advance_head
  // (pg_trigger_depth() > 1), i.e. by an append.
  await sql`
    create function audit_heads_guard() returns trigger
    language plpgsql
    set search_path from current
    as $$
    begin
      if tg_op = 'INSERT' then
        if new.seq = 0 and new.hash is null then return new; end if;
      end if;
      if pg_trigger_depth() > 1 or audit_maintainer() then
        if tg_op = 'DELETE' then return old; end if;
        return new;
      end if;
      raise exception 'audit_heads moves only by appending to audit_log: % refused for role %', tg_op, current_user
        using errcode = 'insufficient_privilege';
    end
    $$
  `.execute(db);
  await sql`
    create trigger audit_heads_guard before insert or update or delete on audit_heads
    for each row execute function audit_heads_guard()
  `.execute(db);
  await sql`
    create trigger audit_heads_no_truncate before truncate on audit_heads
    for each statement execute function audit_heads_guard()
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("audit_log").execute();
  await db.schema.dropTable("audit_heads").execute();
  await sql`drop function audit_log_advance_head()`.execute(db);
  await sql`drop function audit_log_refuse_change()`.execute(db);
  await sql`drop function audit_heads_guard()`.execute(db);
  await sql`drop function audit_maintainer()`.execute(db);
}
