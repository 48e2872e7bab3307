import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// The budget operations as PL/pgSQL functions, so that each operation is one short statement on
// the wire (`select * from budget_reserve(…)`) and one atomic unit in the database: the function
// locks the tenant's budget row first (then reservation rows, the lock order every budget
// operation follows), decides from the locked, latest version of the row, and writes. In READ
// COMMITTED each statement inside a function takes a fresh snapshot, so everything read after the
// lock is the latest committed state. Statements inside a function are planned once per session
// (`force_generic_plan`: they are point lookups by key, and re-planning them cost more than
// running them). `set search_path from current` pins the service schema the migration runs in.
//
// Audit events (budget_warning / budget_exceeded) are written by the caller in the same
// transaction. A caller without a transaction passes `p_defer_events`: when an event is due the
// function then writes no decision and answers `deferred`, and the caller repeats the call inside
// a transaction together with the event (the rare path; see src/store/budgets.ts).

/** The reservation columns settle and release return, assigned from a reservation record variable. */
const RESERVATION_OUTPUTS = [
  "execution_id", "trace_id", "amount_micros", "status", "created_at", "expires_at", "closed_at",
  "release_reason", "actual_micros", "spent_after_micros", "remaining_after_micros", "warning",
  "threshold_crossed", "exceeded",
] as const;

function assignReservationOutputs(record: string) {
  return sql.raw(RESERVATION_OUTPUTS.map((column) => `${column} := ${record}.${column};`).join("\n      "));
}

export async function up(db: Kysely<any>): Promise<void> {
  // The period containing `at`, in UTC: daily from 00:00, weekly from Monday 00:00, monthly from
  // the 1st 00:00. Period "none" starts at `at` and never ends. The one definition of periods.
  await sql`
    create function budget_period_start(p_period text, p_at timestamptz) returns timestamptz
    language sql immutable parallel safe
    as $$
      select case when p_period = 'none' then p_at
        else date_trunc(case p_period when 'daily' then 'day' when 'weekly' then 'week' else 'month' end, p_at at time zone 'UTC') at time zone 'UTC' end
    $$
  `.execute(db);
  await sql`
    create function budget_period_end(p_period text, p_at timestamptz) returns timestamptz
    language sql immutable parallel safe
    as $$
      select case when p_period = 'none' then null
        else (date_trunc(case p_period when 'daily' then 'day' when 'weekly' then 'week' else 'month' end, p_at at time zone 'UTC')
              + case p_period when 'daily' then interval '1 day' when 'weekly' then interval '7 days' else interval '1 month' end) at time zone 'UTC' end
    $$
  `.execute(db);

  // Marks a tenant's open reservations past `p_now` expired and returns what they held. The
  // caller holds the budget row lock and subtracts the amount from reserved_micros.
  await sql`
    create function budget_expire_holds(p_tenant text, p_now timestamptz, out expired_count int4, out expired_micros int8)
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    as $$
    begin
      with e as (
        update budget_reservations r set status = 'expired', closed_at = p_now, release_reason = 'expired'
        where r.tenant_id = p_tenant and r.status = 'open' and r.expires_at <= p_now
        returning r.amount_micros)
      select count(*)::int4, coalesce(sum(e.amount_micros), 0)::int8 into expired_count, expired_micros from e;
    end
    $$
  `.execute(db);

  // Reserve: holds p_amount for one execution when `not hard or spent + reserved + amount <= limit`,
  // after rolling the period over and returning expired holds. Outcomes: reserved, existing (the
  // execution already has a reservation), denied (hard budget full), deferred (see above). A
  // tenant without a budget first gets the given default one (concurrent first requests agree on
  // one row: the losers of `on conflict do nothing` wait for the winner and then lock its row).
  // The figures describe the budget before this reservation.
  await sql`
    create function budget_reserve(
      p_tenant text, p_execution text, p_trace text, p_amount int8, p_reservation text,
      p_now timestamptz, p_expires timestamptz,
      p_default_limit int8, p_default_hard boolean, p_default_period text, p_default_threshold float8,
      p_defer_events boolean,
      out outcome text, out limit_micros int8, out spent_micros int8, out reserved_micros int8,
      out hard_limit boolean, out alert_threshold float8, out exceeded_due boolean, out period_start timestamptz)
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    as $$
    declare
      b record;
      v_rolls boolean;
      v_spent int8;
      v_ps timestamptz;
      v_pe timestamptz;
      v_freed int8 := 0;
      v_expired int4 := 0;
      v_reserved int8;
      v_held int8 := 0;
      v_due boolean := false;
    begin
      -- The lock, and whether any open hold has expired: an expired hold is returned before the
      -- decision. (The probe reads the statement's snapshot, which may predate the lock wait; a
      -- hold it misses is returned by the next call or the reconciler. Missing one only makes a
      -- decision more conservative, never lets it overspend.)
      select bb.*, exists (select 1 from budget_reservations r where r.tenant_id = p_tenant and r.status = 'open' and r.expires_at <= p_now) as expiring
      into b
      from budgets bb where bb.tenant_id = p_tenant for update of bb;
      if not found then
        insert into budgets (tenant_id, limit_micros, period, period_start, period_end, hard_limit, alert_threshold, is_default, created_at, updated_at)
        values (p_tenant, p_default_limit, p_default_period, budget_period_start(p_default_period, p_now), budget_period_end(p_default_period, p_now),
                p_default_hard, p_default_threshold, true, p_now, p_now)
        on conflict (tenant_id) do nothing;
        select bb.*, exists (select 1 from budget_reservations r where r.tenant_id = p_tenant and r.status = 'open' and r.expires_at <= p_now) as expiring
        into strict b
        from budgets bb where bb.tenant_id = p_tenant for update of bb;
      end if;

      v_rolls := b.period_end is not null and b.period_end <= p_now;
      if v_rolls then
        v_spent := 0;
        v_ps := budget_period_start(b.period, p_now);
        v_pe := budget_period_end(b.period, p_now);
      else
        v_spent := b.spent_micros;
        v_ps := b.period_start;
        v_pe := b.period_end;
      end if;
      if b.expiring then
        select e.expired_count, e.expired_micros into v_expired, v_freed from budget_expire_holds(p_tenant, p_now) e;
      end if;
      v_reserved := b.reserved_micros - v_freed;

      if not b.hard_limit or v_spent + v_reserved + p_amount <= b.limit_micros then
        -- The unique (tenant, execution) key makes a second reserve of an execution hold nothing.
        insert into budget_reservations (tenant_id, reservation_id, execution_id, trace_id, amount_micros, status, created_at, expires_at)
        values (p_tenant, p_reservation, p_execution, p_trace, p_amount, 'open', p_now, p_expires)
        on conflict (tenant_id, execution_id) do nothing;
        if found then
          outcome := 'reserved';
          v_held := p_amount;
        else
          outcome := 'existing';
        end if;
      elsif exists (select 1 from budget_reservations r where r.tenant_id = p_tenant and r.execution_id = p_execution) then
        outcome := 'existing';
      else
        -- A hard denial alerts once per period: the marker moves with the event's transaction.
        v_due := b.exceeded_period_start is distinct from v_ps;
        outcome := case when v_due and p_defer_events then 'deferred' else 'denied' end;
        v_due := v_due and not p_defer_events;
      end if;

      if v_rolls or v_expired > 0 or v_held > 0 or v_due then
        update budgets set
          spent_micros = v_spent,
          reserved_micros = v_reserved + v_held,
          period_start = v_ps,
          period_end = v_pe,
          exceeded_period_start = case when v_due then v_ps else budgets.exceeded_period_start end
        where budgets.tenant_id = p_tenant;
      end if;

      limit_micros := b.limit_micros;
      spent_micros := v_spent;
      reserved_micros := v_reserved;
      hard_limit := b.hard_limit;
      alert_threshold := b.alert_threshold;
      exceeded_due := v_due;
      period_start := case when v_due then v_ps end;
    end
    $$
  `.execute(db);

  // Settle: charges the actual cost (in full, even above the reservation or after it expired) and
  // frees the hold, at most once. Outcomes: settled, already_settled (the stored first answer),
  // released, not_found (no such reservation of this tenant), deferred (decided from the budget
  // alone, before the reservation is looked at). Returns the reservation row as it is after the call.
  await sql`
    create function budget_settle(
      p_tenant text, p_reservation text, p_actual int8, p_now timestamptz, p_defer_events boolean,
      out outcome text, out execution_id text, out trace_id text, out amount_micros int8, out status text,
      out created_at timestamptz, out expires_at timestamptz, out closed_at timestamptz, out release_reason text,
      out actual_micros int8, out spent_after_micros int8, out remaining_after_micros int8, out warning text,
      out threshold_crossed boolean, out exceeded boolean,
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
        warning = concat_ws('; ',
          case when p_actual > r.amount_micros then format('actual cost %s exceeded the reservation of %s micro-dollars', p_actual, r.amount_micros) end,
          case when v_new > b.limit_micros then format('budget exceeded: spent %s of %s micro-dollars (%s limit)', v_new, b.limit_micros, case when b.hard_limit then 'hard' else 'soft' end)
               when v_new > 0 and v_new >= v_threshold then format('budget usage at %s%% - approaching limit', to_char(v_new::float8 / b.limit_micros * 100, 'FM990.0')) end),
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
      ${assignReservationOutputs("res")}
    end
    $$
  `.execute(db);

  // Release: returns an open reservation's hold without spend, at most once. Outcomes: released,
  // closed (already settled, released or expired), not_found. Returns the reservation row as it is
  // after the call.
  await sql`
    create function budget_release(
      p_tenant text, p_reservation text, p_reason text, p_now timestamptz,
      out outcome text, out execution_id text, out trace_id text, out amount_micros int8, out status text,
      out created_at timestamptz, out expires_at timestamptz, out closed_at timestamptz, out release_reason text,
      out actual_micros int8, out spent_after_micros int8, out remaining_after_micros int8, out warning text,
      out threshold_crossed boolean, out exceeded boolean)
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    as $$
    declare
      r budget_reservations%rowtype;
    begin
      perform 1 from budgets where budgets.tenant_id = p_tenant for update;
      if found then
        select * into r from budget_reservations where budget_reservations.tenant_id = p_tenant and budget_reservations.reservation_id = p_reservation for update;
      end if;
      if not found then
        outcome := 'not_found';
        return;
      end if;
      if r.status = 'open' then
        update budgets set reserved_micros = budgets.reserved_micros - r.amount_micros where budgets.tenant_id = p_tenant;
        update budget_reservations set status = 'released', closed_at = p_now, release_reason = p_reason
        where budget_reservations.tenant_id = p_tenant and budget_reservations.reservation_id = p_reservation
        returning * into r;
        outcome := 'released';
      else
        outcome := 'closed';
      end if;
      ${assignReservationOutputs("r")}
    end
    $$
  `.execute(db);

  // The reconciler's unit of work: a tenant's expired holds returned under its budget row lock.
  await sql`
    create function budget_release_expired(p_tenant text, p_now timestamptz, out released_count int4, out released_micros int8)
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    as $$
    begin
      released_count := 0;
      released_micros := 0;
      perform 1 from budgets where budgets.tenant_id = p_tenant for update;
      if not found then
        return;
      end if;
      select e.expired_count, e.expired_micros into released_count, released_micros from budget_expire_holds(p_tenant, p_now) e;
      if released_count > 0 then
        update budgets set reserved_micros = budgets.reserved_micros - released_micros where budgets.tenant_id = p_tenant;
      end if;
    end
    $$
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const fn of [
    "budget_release_expired(text, timestamptz)",
    "budget_release(text, text, text, timestamptz)",
    "budget_settle(text, text, int8, timestamptz, boolean)",
    "budget_reserve(text, text, text, int8, text, timestamptz, timestamptz, int8, boolean, text, float8, boolean)",
    "budget_expire_holds(text, timestamptz)",
    "budget_period_end(text, timestamptz)",
    "budget_period_start(text, timestamptz)",
  ]) {
    await sql`drop function ${sql.raw(fn)}`.execute(db);
  }
}
