import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// An audit append as one PL/pgSQL function, so that it is one statement on the wire instead of
// BEGIN, lock the head, insert, COMMIT (four round trips, with the tenant's head row locked across
// three of them). The function locks the head, looks the idempotency key up (a statement inside a
// function takes a fresh snapshot in READ COMMITTED, so the lookup sees every entry committed
// before the lock was granted), and appends. Given the caller's transaction, the head stays locked
// until it ends, as before.
//
// The entry hash is still the SHA-256 of the entry's RFC 8785 (JCS) text (src/store/audit-chain.ts,
// docs/GOVERNANCE.md). Only three of its values are known here rather than in the application:
// created_at, prev_hash and seq. JCS orders the keys (actor, created_at, data, event_type,
// prev_hash, seq, tenant_id, trace_id, workspace_id), so the application sends the text around
// those values, already canonical (p_before_created_at, p_before_prev_hash, p_after_seq), and the
// function only inserts an ISO-8601 UTC timestamp with milliseconds, a quoted hash or null, and an
// integer. Verification keeps recomputing the whole text from the stored row in the application.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function audit_append(
      p_tenant text, p_event_type text, p_workspace text, p_trace text, p_actor text,
      p_data text, p_idempotency_key text,
      p_before_created_at text, p_before_prev_hash text, p_after_seq text,
      out entry_seq int8, out entry_hash text, out entry_created_at timestamptz, out appended boolean)
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    as $$
    declare
      v_seq int8;
      v_hash text;
    begin
      select h.seq, h.hash into v_seq, v_hash from audit_heads h where h.tenant_id = p_tenant for update;
      if not found then
        -- The tenant's first append; two racing first appends both insert-or-skip, then queue.
        insert into audit_heads (tenant_id) values (p_tenant) on conflict (tenant_id) do nothing;
        select h.seq, h.hash into v_seq, v_hash from audit_heads h where h.tenant_id = p_tenant for update;
      end if;
      if p_idempotency_key is not null then
        select e.seq, e.hash, e.created_at into entry_seq, entry_hash, entry_created_at
        from audit_log e where e.tenant_id = p_tenant and e.idempotency_key = p_idempotency_key;
        if found then
          appended := false;
          return;
        end if;
      end if;
      entry_seq := v_seq + 1;
      entry_created_at := date_trunc('milliseconds', clock_timestamp());
      entry_hash := 'sha256:' || encode(sha256(convert_to(
        p_before_created_at || to_char(entry_created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
          || p_before_prev_hash || coalesce(to_json(v_hash)::text, 'null')
          || ',"seq":' || entry_seq::text || p_after_seq,
        'UTF8')), 'hex');
      -- The insert trigger checks that this continues the head and advances it.
      insert into audit_log (tenant_id, seq, prev_hash, event_type, workspace_id, trace_id, actor, data, created_at, hash, idempotency_key)
      values (p_tenant, entry_seq, v_hash, p_event_type, p_workspace, p_trace, p_actor, p_data::jsonb, entry_created_at, entry_hash, p_idempotency_key);
      appended := true;
    end
    $$
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function audit_append(text, text, text, text, text, text, text, text, text, text)`.execute(db);
}
