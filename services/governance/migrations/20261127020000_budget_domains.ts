import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// The budgets table's single-column CHECK constraints become domains, with the same rules.
// Why: PostgreSQL re-reads (parses and plans) a table's CHECK constraints in every INSERT or
// UPDATE statement, and every budget operation updates its budget row: with five such checks that
// was the largest fixed cost of a reservation's statements after executor start-up. A domain's
// check is read once per session (the type cache) and runs only on the columns a statement
// writes. Every writer still passes the same rules: whatever assigns a value to a domain-typed
// column is checked. The two-column rule (period "none" has no end) stays a table CHECK.
// Clients see the base types (PostgreSQL reports a domain column as its base type); the one
// function that returns budget columns through RETURN QUERY, which insists on the declared types,
// is redefined with its outputs cast to them (its logic unchanged).

/** Settings of every batch function (as 20261127000000). */
const batchSettings = sql.raw(`
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    set enable_seqscan = off
    set enable_hashjoin = off
    set enable_mergejoin = off`);

const DOMAINS = [
  { column: "limit_micros", domain: "budget_limit_micros", base: "int8", rule: "value > 0", check: "limit_micros > 0" },
  { column: "spent_micros", domain: "budget_micros", base: "int8", rule: "value >= 0", check: "spent_micros >= 0" },
  // reserved_micros shares spent_micros's domain (created once).
  { column: "reserved_micros", domain: "budget_micros", base: "int8", rule: "value >= 0", check: "reserved_micros >= 0" },
  { column: "period", domain: "budget_period", base: "text", rule: "value in ('daily', 'weekly', 'monthly', 'none')", check: "period in ('daily', 'weekly', 'monthly', 'none')" },
  {
    column: "alert_threshold",
    domain: "budget_alert_threshold",
    base: "float8",
    rule: "value >= 0 and value <= 1",
    check: "alert_threshold >= 0 and alert_threshold <= 1",
  },
] as const;

export async function up(db: Kysely<any>): Promise<void> {
  for (const domain of new Set(DOMAINS.map((d) => d.domain))) {
    const { base, rule } = DOMAINS.find((d) => d.domain === domain)!;
    await sql`create domain ${sql.id(domain)} as ${sql.raw(base)} check (${sql.raw(rule)})`.execute(db);
  }
  for (const { column, domain } of DOMAINS) {
    await sql`alter table budgets drop constraint ${sql.id(`budgets_${column}_check`)}`.execute(db);
    await sql`alter table budgets alter column ${sql.id(column)} type ${sql.id(domain)}`.execute(db);
  }
  await reserveBatchFunction(db);
}

/** budget_reserve_batch as 20261127000000 defined it, its budget outputs cast to the declared types. */
async function reserveBatchFunction(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function budget_reserve_batch(
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
               b.limit_micros::int8,
               b.spent_micros::int8,
               (b.reserved_micros + coalesce(sum(ins.amount_micros) over (partition by it.tenant order by it.item rows between unbounded preceding and 1 preceding), 0))::int8,
               b.hard_limit,
               b.alert_threshold::float8
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
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const { column, base, check } of DOMAINS) {
    await sql`alter table budgets alter column ${sql.id(column)} type ${sql.raw(base)}`.execute(db);
    await sql`alter table budgets add constraint ${sql.id(`budgets_${column}_check`)} check (${sql.raw(check)})`.execute(db);
  }
  for (const domain of new Set(DOMAINS.map((d) => d.domain))) {
    await sql`drop domain ${sql.id(domain)}`.execute(db);
  }
}
