import { sql, type Kysely } from "kysely";
import { assignOutputs, batchSettings, clearOutputs, outputsOf, tableColumns } from "./20261127000000_budget_batch_functions.js";

// Frozen in time: later changes get a new migration, never an edit here.
//
// Reservations are found by their key, whatever the planner knew when it planned. The budget
// functions run their statements on generic plans (planned once per session, see 20261126000000),
// and a session that planned while budget_reservations was small kept plans that read every
// reservation of a tenant (or every open one) per lookup, for as long as the connection lived or
// until an ANALYZE invalidated them: on a small table any index that begins with tenant_id, or a
// whole-index scan joined afterwards, looked as cheap as the key (seen in `pnpm bench budget`:
// the settle batch read 141 rows per lookup after five seconds and growing; test/budget-plans.test.ts
// repeats it with 3,000). Three changes:
// - The primary key (tenant_id, reservation_id) becomes the only index that begins with
//   tenant_id. The (tenant, execution) uniqueness moves to an index led by execution_id (lookups by
//   execution still use both columns; ON CONFLICT (tenant_id, execution_id) infers a unique index
//   by its set of columns, in any order). The open holds' expiry index is led by expires_at: the
//   per-tenant probe (`tenant_id = $1 and status = 'open' and expires_at <= now`) reads only holds
//   already past their expiry, which the reconciler keeps few, and the reconciler's own scan
//   across tenants becomes a range scan.
// - The settle and release batches look each item's reservation up in a LATERAL subquery with
//   LIMIT 1 (a subquery with a limit is not merged into the join, so the items drive and each
//   lookup is the key's), and update the row they found by its ctid (the tenant's budget row lock,
//   taken first, keeps the row from changing in between). Their logic is otherwise unchanged.

/** One reservation by its key, with its ctid as row_id, for `cross join lateral (…)` from `items`. */
function keyLookup(items: string) {
  return sql.raw(
    `select x.ctid as row_id, x.* from budget_reservations x where x.tenant_id = ${items}.tenant and x.reservation_id = ${items}.reservation limit 1`,
  );
}

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table budget_reservations drop constraint budget_reservations_execution_unique`.execute(db);
  await sql`alter table budget_reservations add constraint budget_reservations_execution_unique unique (execution_id, tenant_id)`.execute(db);
  await sql`drop index budget_reservations_open_expiry`.execute(db);
  await sql`create index budget_reservations_open_expiry on budget_reservations (expires_at, tenant_id) where status = 'open'`.execute(db);

  // Settle, batched: as 20261127000000, each reservation found by its key.
  await sql`
    create or replace function budget_settle_batch(p_tenants text[], p_reservations text[], p_actuals int8[], p_nows timestamptz[])
    returns table (item int4, outcome text, ${tableColumns})
    ${batchSettings}
    as $$
    #variable_conflict use_column
    declare
      v_together text[];
      v_all_together boolean;
      v_deferred text[] := '{}';
      v_item int4;
      one record;
    begin
      select coalesce(array_agg(l.tenant_id) filter (where l.together), '{}'), count(*) filter (where l.together) = coalesce(max(l.tenants), -1)
      into v_together, v_all_together
      from (
        select b.tenant_id, t.tenants,
               t.n = t.reservations and t.smallest >= 0
               and (b.period_end is null or b.period_end > t.latest)
               and (b.warned_period_start is not distinct from b.period_start or not (b.spent_micros + t.actual > 0 and b.spent_micros + t.actual >= b.alert_threshold * b.limit_micros))
               and (b.exceeded_period_start is not distinct from b.period_start or b.spent_micros + t.actual <= b.limit_micros) as together
        from budgets b
        join (select i.tenant, sum(i.actual) as actual, min(i.actual) as smallest, max(i.now) as latest,
                     count(*) as n, count(distinct i.reservation) as reservations, count(*) over () as tenants
              from unnest(p_tenants, p_reservations, p_actuals, p_nows) as i(tenant, reservation, actual, now)
              group by i.tenant) t on t.tenant = b.tenant_id
        order by b.tenant_id
        for update of b) l;

      if cardinality(v_together) > 0 then
        return query
        with items as (
          select i.ord::int4 as item, i.tenant, i.reservation, i.actual, i.now
          from unnest(p_tenants, p_reservations, p_actuals, p_nows) with ordinality as i(tenant, reservation, actual, now, ord)
          where i.tenant = any(v_together)
        ),
        found as (
          select it.item, it.actual, it.now, r.*
          from items it cross join lateral (${keyLookup("it")}) r
        ),
        settling as (
          select f.item, f.row_id, f.tenant_id, f.reservation_id, f.actual, f.now, f.amount_micros, f.status as was,
                 b.limit_micros, b.hard_limit, b.alert_threshold * b.limit_micros as threshold,
                 (b.spent_micros + sum(f.actual) over w)::int8 as spent_after,
                 (b.reserved_micros - sum(case when f.status = 'open' then f.amount_micros else 0 end) over w)::int8 as reserved_after
          from found f join budgets b on b.tenant_id = f.tenant_id
          where f.status in ('open', 'expired')
          window w as (partition by f.tenant_id order by f.item)
        ),
        settled as (
          update budget_reservations r set
            status = 'settled',
            actual_micros = s.actual,
            closed_at = s.now,
            spent_after_micros = s.spent_after,
            remaining_after_micros = s.limit_micros - s.spent_after - s.reserved_after,
            warning = budget_settle_warning(s.actual, s.amount_micros, s.spent_after, s.limit_micros, s.hard_limit, s.threshold),
            threshold_crossed = s.spent_after - s.actual < s.threshold and s.spent_after >= s.threshold and s.spent_after > 0,
            exceeded = s.spent_after > s.limit_micros
          from settling s
          where r.ctid = s.row_id
          returning s.item, r.*
        ),
        charged as (
          update budgets b set spent_micros = b.spent_micros + c.actual, reserved_micros = b.reserved_micros - c.freed
          from (select s.tenant_id, sum(s.actual) as actual, sum(case when s.was = 'open' then s.amount_micros else 0 end) as freed
                from settling s group by s.tenant_id) c
          where b.tenant_id = c.tenant_id
        )
        select s.item, 'settled'::text, ${outputsOf("s")} from settled s
        union all
        select f.item, case f.status when 'settled' then 'already_settled' else 'released' end, ${outputsOf("f")}
        from found f where f.status in ('settled', 'released')
        union all
        select it.item, 'not_found'::text, ${outputsOf()} from items it where not exists (select 1 from found f where f.item = it.item);
      end if;

      if not v_all_together then
        for v_item in
          select s.ord from unnest(p_tenants) with ordinality as s(tenant, ord) where not s.tenant = any(v_together) order by s.tenant, s.ord
        loop
          item := v_item;
          ${clearOutputs}
          if p_tenants[v_item] = any(v_deferred) then
            outcome := 'deferred';
          else
            select * into one from budget_settle(p_tenants[v_item], p_reservations[v_item], p_actuals[v_item], p_nows[v_item], true);
            outcome := one.outcome;
            if one.outcome = 'deferred' then
              v_deferred := v_deferred || p_tenants[v_item];
            else
              ${assignOutputs("one")}
            end if;
          end if;
          return next;
        end loop;
      end if;
    end
    $$
  `.execute(db);


  // Release, batched: as 20261127000000, each reservation found by its key.
  await sql`
    create or replace function budget_release_batch(p_tenants text[], p_reservations text[], p_reasons text[], p_nows timestamptz[])
    returns table (item int4, outcome text, ${tableColumns})
    ${batchSettings}
    as $$
    #variable_conflict use_column
    declare
      v_one_by_one text[];
      v_item int4;
      one record;
    begin
      select coalesce(array_agg(l.tenant_id) filter (where not l.together), '{}') into v_one_by_one
      from (
        select b.tenant_id, t.n = t.reservations as together
        from budgets b
        join (select i.tenant, count(*) as n, count(distinct i.reservation) as reservations
              from unnest(p_tenants, p_reservations) as i(tenant, reservation)
              group by i.tenant) t on t.tenant = b.tenant_id
        order by b.tenant_id
        for update of b) l;

      return query
      with items as (
        select i.ord::int4 as item, i.tenant, i.reservation, i.reason, i.now
        from unnest(p_tenants, p_reservations, p_reasons, p_nows) with ordinality as i(tenant, reservation, reason, now, ord)
        where not i.tenant = any(v_one_by_one)
      ),
      found as (
        select it.item, it.reason, it.now as released_at, r.*
        from items it cross join lateral (${keyLookup("it")}) r
      ),
      released as (
        update budget_reservations r set status = 'released', closed_at = f.released_at, release_reason = f.reason
        from found f
        where r.ctid = f.row_id and f.status = 'open'
        returning f.item, r.*
      ),
      returned as (
        update budgets b set reserved_micros = b.reserved_micros - h.amount
        from (select rel.tenant_id, sum(rel.amount_micros) as amount from released rel group by rel.tenant_id) h
        where b.tenant_id = h.tenant_id
      )
      select rel.item, 'released'::text, ${outputsOf("rel")} from released rel
      union all
      select f.item, 'closed'::text, ${outputsOf("f")} from found f where f.status <> 'open'
      union all
      select it.item, 'not_found'::text, ${outputsOf()} from items it where not exists (select 1 from found f where f.item = it.item);

      if cardinality(v_one_by_one) > 0 then
        for v_item in
          select s.ord from unnest(p_tenants) with ordinality as s(tenant, ord) where s.tenant = any(v_one_by_one) order by s.tenant, s.ord
        loop
          item := v_item;
          select * into one from budget_release(p_tenants[v_item], p_reservations[v_item], p_reasons[v_item], p_nows[v_item]);
          outcome := one.outcome;
          ${assignOutputs("one")}
          return next;
        end loop;
      end if;
    end
    $$
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // The settle and release batches stay as redefined here: they answer the same with either index layout.
  await sql`drop index budget_reservations_open_expiry`.execute(db);
  await sql`create index budget_reservations_open_expiry on budget_reservations (tenant_id, expires_at) where status = 'open'`.execute(db);
  await sql`alter table budget_reservations drop constraint budget_reservations_execution_unique`.execute(db);
  await sql`alter table budget_reservations add constraint budget_reservations_execution_unique unique (tenant_id, execution_id)`.execute(db);
}
