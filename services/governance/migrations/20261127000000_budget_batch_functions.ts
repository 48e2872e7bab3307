import { sql, type Kysely } from "kysely";
import * as budgetFunctions from "./20261126000000_budget_functions.js";

// Frozen in time: later changes get a new migration, never an edit here.
//
// Batched budget operations: one call reserves (settles, releases) for many executions of many
// tenants, so concurrent operations share one round trip, a few statements and one commit
// (src/budget-batcher.ts collects them). Each batch function:
//   1. locks the budget rows of its tenants in ONE statement, in tenant-id order (the order every
//      multi-row lock of budgets follows, so batches cannot deadlock each other; a single-tenant
//      function locks one budget row and cannot close a cycle with them), and in the same
//      statement decides, per tenant, from the locked latest row, whether its items can be
//      applied as one set: where doing them all at once is provably what doing them one by one
//      in batch order would do (the common-path tests below);
//   2. applies those tenants' items in ONE statement (one INSERT/UPDATE per table);
//   3. only when some tenant did not qualify: runs its items through the single-item function
//      (20261126000000), one by one in batch order, under the lock already held. That covers a
//      period rollover, expired holds to return, a denial, a repeated execution or reservation id
//      in the batch, and an audit event coming due.
// A batch never creates a budget row: reserve items of a tenant without one are answered
// `deferred` (inserting a row while holding other tenants' locks could deadlock with another
// batch doing the same), and so is the item whose audit event comes due: the batch runs as one
// autocommit statement, where the event cannot be appended atomically with the change. The
// single-item function writes nothing for such an item; the item and that tenant's later items in
// the batch are answered `deferred` unrun, and the caller repeats them, in batch order, through
// the single path, which creates the budget row or commits the event with the change
// (src/store/budget-batches.ts). Each function returns one row per item, `item` being the item's
// 1-based position in the arrays. Statements run with nested loops over key lookups: the generic
// plans would otherwise hash-join a sequential scan of budgets, whose frequently updated rows
// leave many dead versions to read.
//
// Also here: the settlement warning text as one SQL function, now used by budget_settle and the
// batch settle alike (budget_settle is redefined with it; its behaviour is unchanged).

/** The reservation columns settle and release return, with their types. */
const RESERVATION_OUTPUTS = {
  execution_id: "text",
  trace_id: "text",
  amount_micros: "int8",
  status: "text",
  created_at: "timestamptz",
  expires_at: "timestamptz",
  closed_at: "timestamptz",
  release_reason: "text",
  actual_micros: "int8",
  spent_after_micros: "int8",
  remaining_after_micros: "int8",
  warning: "text",
  threshold_crossed: "boolean",
  exceeded: "boolean",
} as const;
const OUTPUT_COLUMNS = Object.keys(RESERVATION_OUTPUTS) as (keyof typeof RESERVATION_OUTPUTS)[];

/** `out execution_id text, …` (the OUT parameters of budget_settle). */
const outParameters = sql.raw(OUTPUT_COLUMNS.map((column) => `out ${column} ${RESERVATION_OUTPUTS[column]}`).join(", "));
/** `execution_id text, …` (a RETURNS TABLE column list). */
export const tableColumns = sql.raw(OUTPUT_COLUMNS.map((column) => `${column} ${RESERVATION_OUTPUTS[column]}`).join(", "));
/** `alias.execution_id, …`, or typed nulls without an alias (an item without a reservation). */
export function outputsOf(alias?: string) {
  return sql.raw(OUTPUT_COLUMNS.map((column) => (alias ? `${alias}.${column}` : `null::${RESERVATION_OUTPUTS[column]}`)).join(", "));
}
/** `execution_id := r.execution_id; …` (the budget_settle body's answer from a record). */
export function assignOutputs(record: string) {
  return sql.raw(OUTPUT_COLUMNS.map((column) => `${column} := ${record}.${column};`).join("\n      "));
}
/** `execution_id := null; …` */
export const clearOutputs = sql.raw(OUTPUT_COLUMNS.map((column) => `${column} := null;`).join(" "));

/** Settings of every batch function (see above). */
export const batchSettings = sql.raw(`
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    set enable_seqscan = off
    set enable_hashjoin = off
    set enable_mergejoin = off`);

export async function up(db: Kysely<any>): Promise<void> {
  // The warning a settlement records: an overrun of the reservation, then the budget state
  // (exceeded, or at/above the alert threshold). Stable, not immutable: format and to_char read
  // settings; stable keeps it inlinable, so it costs what the expression did.
  await sql`
    create function budget_settle_warning(p_actual int8, p_amount int8, p_spent_after int8, p_limit int8, p_hard boolean, p_threshold float8) returns text
    language sql stable parallel safe
    as $$
      select concat_ws('; ',
        case when p_actual > p_amount then format('actual cost %s exceeded the reservation of %s micro-dollars', p_actual, p_amount) end,
        case when p_spent_after > p_limit then format('budget exceeded: spent %s of %s micro-dollars (%s limit)', p_spent_after, p_limit, case when p_hard then 'hard' else 'soft' end)
             when p_spent_after > 0 and p_spent_after >= p_threshold then format('budget usage at %s%% - approaching limit', to_char(p_spent_after::float8 / p_limit * 100, 'FM990.0')) end)
    $$
  `.execute(db);

  // budget_settle as in 20261126000000, its warning now from budget_settle_warning.
  await sql`
    create or replace function budget_settle(
      p_tenant text, p_reservation text, p_actual int8, p_now timestamptz, p_defer_events boolean,
      out outcome text, ${outParameters},
      out limit_micros int8, out warn_due boolean, out exceeded_due boolean, out period_start timestamptz)
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    as $$
    declare
      b budgets%rowtype;
      res budget_reservations%rowtype;
      v_spent int8;
      v_ps timestamptz;
      v_pe timestamptz;
      v_new int8;
      v_threshold float8;
      v_warn boolean;
      v_exceed boolean;
    begin
      select * into b from budgets where budgets.tenant_id = p_tenant for update;
      if not found then
        outcome := 'not_found';
        return;
      end if;
      if b.period_end is not null and b.period_end <= p_now then
        v_spent := 0;
        v_ps := budget_period_start(b.period, p_now);
        v_pe := budget_period_end(b.period, p_now);
      else
        v_spent := b.spent_micros;
        v_ps := b.period_start;
        v_pe := b.period_end;
      end if;
      v_new := v_spent + p_actual;
      v_threshold := b.alert_threshold * b.limit_micros;
      v_warn := v_new > 0 and v_new >= v_threshold and b.warned_period_start is distinct from v_ps;
      v_exceed := v_new > b.limit_micros and b.exceeded_period_start is distinct from v_ps;
      if (v_warn or v_exceed) and p_defer_events then
        outcome := 'deferred';
        return;
      end if;
      -- Only open or expired reservations settle; an expired one's hold was already returned.
      -- The SET expressions read the row as it was, so the update alone knows its old status.
      update budget_reservations r set
        status = 'settled',
        actual_micros = p_actual,
        closed_at = p_now,
        spent_after_micros = v_new,
        remaining_after_micros = b.limit_micros - v_new - (b.reserved_micros - case when r.status = 'open' then r.amount_micros else 0 end),
        warning = budget_settle_warning(p_actual, r.amount_micros, v_new, b.limit_micros, b.hard_limit, v_threshold),
        threshold_crossed = v_spent < v_threshold and v_new >= v_threshold and v_new > 0,
        exceeded = v_new > b.limit_micros
      where r.tenant_id = p_tenant and r.reservation_id = p_reservation and r.status in ('open', 'expired')
      returning r.* into res;
      if found then
        update budgets set
          spent_micros = v_new,
          -- reserved after = limit - spent - remaining, exactly as the reservation update computed it
          reserved_micros = b.limit_micros - v_new - res.remaining_after_micros,
          period_start = v_ps,
          period_end = v_pe,
          warned_period_start = case when v_warn then v_ps else budgets.warned_period_start end,
          exceeded_period_start = case when v_exceed then v_ps else budgets.exceeded_period_start end
        where budgets.tenant_id = p_tenant;
        outcome := 'settled';
        limit_micros := b.limit_micros;
        warn_due := v_warn;
        exceeded_due := v_exceed;
        period_start := case when v_warn or v_exceed then v_ps end;
      else
        -- Settled, released, or not this tenant's: closed states never change, so no lock is needed.
        select * into res from budget_reservations where budget_reservations.tenant_id = p_tenant and budget_reservations.reservation_id = p_reservation;
        if not found then
          outcome := 'not_found';
          return;
        end if;
        outcome := case res.status when 'settled' then 'already_settled' when 'released' then 'released' end;
        if outcome is null then
          raise exception 'reservation % of tenant % is % but was not settled', p_reservation, p_tenant, res.status;
        end if;
      end if;
      ${assignOutputs("res")}
    end
    $$
  `.execute(db);

  // Reserve, batched. Common path for a tenant (all its items at once = one by one, in order):
  // no execution id repeats, amounts are >= 0, no item's time reaches the period end, the budget
  // is soft or the sum of all its amounts fits (`spent + reserved + sum <= limit`: then every
  // prefix fits, so one by one would accept each item), and no open hold has expired by the
  // latest item's time (the probe reads the statement's snapshot, like budget_reserve's; a hold it
  // misses is returned later and only makes the decision more conservative). An execution that
  // already has a reservation is answered `existing` and holds nothing, as one by one. Each item's
  // figures are the budget before it: reserved plus the holds of the tenant's earlier items.
  await sql`
    create function budget_reserve_batch(
      p_tenants text[], p_executions text[], p_traces text[], p_amounts int8[], p_reservations text[],
      p_nows timestamptz[], p_expires timestamptz[],
      p_default_limits int8[], p_default_hards boolean[], p_default_periods text[], p_default_thresholds float8[])
    returns table (item int4, outcome text, limit_micros int8, spent_micros int8, reserved_micros int8, hard_limit boolean, alert_threshold float8)
    ${batchSettings}
    as $$
    #variable_conflict use_column
    declare
      v_locked text[];
      v_together text[];
      v_all_together boolean;
      v_deferred text[] := '{}';
      v_item int4;
      one record;
    begin
      -- (The expiry probe is the CASE's last branch, so it runs only for tenants that pass the
      -- other tests, as an index probe on (tenant_id, expires_at).)
      select coalesce(array_agg(l.tenant_id), '{}'), coalesce(array_agg(l.tenant_id) filter (where l.together), '{}'),
             count(*) filter (where l.together) = coalesce(max(l.tenants), -1)
      into v_locked, v_together, v_all_together
      from (
        select b.tenant_id, t.tenants, case
          when t.n <> t.executions or t.smallest < 0 then false
          when b.period_end is not null and b.period_end <= t.latest then false
          when b.hard_limit and b.spent_micros + b.reserved_micros + t.amount > b.limit_micros then false
          else not exists (select 1 from budget_reservations r where r.tenant_id = b.tenant_id and r.status = 'open' and r.expires_at <= t.latest) end as together
        from budgets b
        join (select i.tenant, sum(i.amount) as amount, min(i.amount) as smallest, max(i.now) as latest,
                     count(*) as n, count(distinct i.execution) as executions, count(*) over () as tenants
              from unnest(p_tenants, p_executions, p_amounts, p_nows) as i(tenant, execution, amount, now)
              group by i.tenant) t on t.tenant = b.tenant_id
        order by b.tenant_id
        for update of b) l;

      if cardinality(v_together) > 0 then
        return query
        with items as (
          select i.ord::int4 as item, i.tenant, i.execution, i.trace, i.amount, i.reservation, i.now, i.expires
          from unnest(p_tenants, p_executions, p_traces, p_amounts, p_reservations, p_nows, p_expires)
               with ordinality as i(tenant, execution, trace, amount, reservation, now, expires, ord)
          where i.tenant = any(v_together)
        ),
        inserted as (
          insert into budget_reservations as r (tenant_id, reservation_id, execution_id, trace_id, amount_micros, status, created_at, expires_at)
          select it.tenant, it.reservation, it.execution, it.trace, it.amount, 'open', it.now, it.expires from items it
          on conflict (tenant_id, execution_id) do nothing
          returning r.tenant_id, r.reservation_id, r.amount_micros
        ),
        held as (
          update budgets b set reserved_micros = b.reserved_micros + h.amount
          from (select ins.tenant_id, sum(ins.amount_micros) as amount from inserted ins group by ins.tenant_id) h
          where b.tenant_id = h.tenant_id
        )
        -- budgets as of the statement's start: the figures before the batch.
        select it.item,
               case when ins.reservation_id is null then 'existing' else 'reserved' end,
               b.limit_micros,
               b.spent_micros,
               (b.reserved_micros + coalesce(sum(ins.amount_micros) over (partition by it.tenant order by it.item rows between unbounded preceding and 1 preceding), 0))::int8,
               b.hard_limit,
               b.alert_threshold
        from items it
        join budgets b on b.tenant_id = it.tenant
        left join inserted ins on ins.reservation_id = it.reservation;
      end if;

      if not v_all_together then
        for v_item in
          select s.ord from unnest(p_tenants) with ordinality as s(tenant, ord) where not s.tenant = any(v_together) order by s.tenant, s.ord
        loop
          item := v_item;
          limit_micros := null; spent_micros := null; reserved_micros := null; hard_limit := null; alert_threshold := null;
          if not p_tenants[v_item] = any(v_locked) or p_tenants[v_item] = any(v_deferred) then
            outcome := 'deferred';
          else
            select * into one from budget_reserve(
              p_tenants[v_item], p_executions[v_item], p_traces[v_item], p_amounts[v_item], p_reservations[v_item], p_nows[v_item], p_expires[v_item],
              p_default_limits[v_item], p_default_hards[v_item], p_default_periods[v_item], p_default_thresholds[v_item], true);
            outcome := one.outcome;
            if one.outcome = 'deferred' then
              v_deferred := v_deferred || p_tenants[v_item];
            else
              limit_micros := one.limit_micros; spent_micros := one.spent_micros; reserved_micros := one.reserved_micros;
              hard_limit := one.hard_limit; alert_threshold := one.alert_threshold;
            end if;
          end if;
          return next;
        end loop;
      end if;
    end
    $$
  `.execute(db);

  // Settle, batched. Common path for a tenant: no reservation id repeats, actuals are >= 0, no
  // item's time reaches the period end, and no audit event can come due: spend only grows, so if
  // the spend after ALL its items (spent + sum of actuals) is below the alert threshold and within
  // the limit, or the period's marker is already set, no item in between crosses either. Each
  // settling item's answer is what one by one gives: spend after = spent + the actuals of the
  // tenant's settling items up to it (a window sum in batch order), reserved after = reserved
  // minus the open holds they freed. A tenant without a budget row has no reservations: its items
  // go one by one and answer not_found, locking nothing.
  await sql`
    create function budget_settle_batch(p_tenants text[], p_reservations text[], p_actuals int8[], p_nows timestamptz[])
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
          from items it join budget_reservations r on r.tenant_id = it.tenant and r.reservation_id = it.reservation
        ),
        settling as (
          select f.item, f.tenant_id, f.reservation_id, f.actual, f.now, f.amount_micros, f.status as was,
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
          where r.tenant_id = s.tenant_id and r.reservation_id = s.reservation_id
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

  // Release, batched. Release never rolls a period over or emits an event, so every tenant takes
  // the common path except one whose reservation id repeats in the batch (the second release of
  // it answers closed, one by one). Open reservations are released and their holds returned;
  // closed ones answer closed, unknown ones not_found (as do all of a tenant without a budget).
  await sql`
    create function budget_release_batch(p_tenants text[], p_reservations text[], p_reasons text[], p_nows timestamptz[])
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
        select it.item, r.*
        from items it join budget_reservations r on r.tenant_id = it.tenant and r.reservation_id = it.reservation
      ),
      released as (
        update budget_reservations r set status = 'released', closed_at = it.now, release_reason = it.reason
        from items it
        where r.tenant_id = it.tenant and r.reservation_id = it.reservation and r.status = 'open'
        returning it.item, r.*
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
  for (const fn of [
    "budget_release_batch(text[], text[], text[], timestamptz[])",
    "budget_settle_batch(text[], text[], int8[], timestamptz[])",
    "budget_reserve_batch(text[], text[], text[], int8[], text[], timestamptz[], timestamptz[], int8[], boolean[], text[], float8[])",
  ]) {
    await sql`drop function ${sql.raw(fn)}`.execute(db);
  }
  // budget_settle as 20261126000000 defined it: that migration's functions, recreated by it.
  await budgetFunctions.down(db);
  await budgetFunctions.up(db);
  await sql`drop function budget_settle_warning(int8, int8, int8, int8, boolean, float8)`.execute(db);
}
