import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// One call for a batch of mixed budget operations: the releases, settlements and reservations
// that arrived together (src/budget-batcher.ts) share one round trip and one commit. At the rate
// the service sees them (a reservation and a settlement per execution), most batches hold one or
// two of each kind; sending each kind as its own call doubled the round trips and commits, and
// the two calls of one process waited for each other's row locks.
//
// The function locks the budget rows of ALL the batch's tenants first, in one statement in
// tenant-id order (the order every multi-row lock of budgets follows, see 20261127000000), and
// then runs the kinds in that order: releases and settlements first (they return holds the
// reservations may then use), reservations last. A kind with one item runs the single-item
// function (20261126000000), cheaper for one item than the set path; a kind with more runs its
// batch function (20261127000000), whose own lock statement then finds its rows already held.
// A reservation of a tenant without a budget row is answered `deferred` (creating the row while
// holding other tenants' locks could deadlock), as the batch functions do. Each row carries its
// item's kind and 1-based position in that kind's arrays.

/** One answer row: the reservation figures, then the reservation columns (null where a kind has none). */
const RESERVE_COLUMNS = ["limit_micros", "spent_micros", "reserved_micros", "hard_limit", "alert_threshold"] as const;
const RESERVATION_COLUMNS = [
  "execution_id", "trace_id", "amount_micros", "status", "created_at", "expires_at", "closed_at",
  "release_reason", "actual_micros", "spent_after_micros", "remaining_after_micros", "warning",
  "threshold_crossed", "exceeded",
] as const;
const TYPES: Record<(typeof RESERVE_COLUMNS)[number] | (typeof RESERVATION_COLUMNS)[number], string> = {
  limit_micros: "int8",
  spent_micros: "int8",
  reserved_micros: "int8",
  hard_limit: "boolean",
  alert_threshold: "float8",
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
};

/** The select list of one kind's answers from `alias`: its own columns, typed nulls for the others. */
function answers(kind: "release" | "settle" | "reserve", alias: string, item: string) {
  const own: readonly string[] = kind === "reserve" ? RESERVE_COLUMNS : RESERVATION_COLUMNS;
  const columns = [...RESERVE_COLUMNS, ...RESERVATION_COLUMNS].map((c) => (own.includes(c) ? `${alias}.${c}` : `null::${TYPES[c]}`));
  return sql.raw(`'${kind}'::text, ${item}, ${alias}.outcome, ${columns.join(", ")}`);
}

const returnColumns = sql.raw([...RESERVE_COLUMNS, ...RESERVATION_COLUMNS].map((c) => `${c} ${TYPES[c]}`).join(", "));

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function budget_batch(
      p_release_tenants text[], p_release_reservations text[], p_release_reasons text[], p_release_nows timestamptz[],
      p_settle_tenants text[], p_settle_reservations text[], p_settle_actuals int8[], p_settle_nows timestamptz[],
      p_reserve_tenants text[], p_reserve_executions text[], p_reserve_traces text[], p_reserve_amounts int8[], p_reserve_reservations text[],
      p_reserve_nows timestamptz[], p_reserve_expires timestamptz[],
      p_default_limits int8[], p_default_hards boolean[], p_default_periods text[], p_default_thresholds float8[])
    returns table (kind text, item int4, outcome text, ${returnColumns})
    language plpgsql
    set search_path from current
    set plan_cache_mode = force_generic_plan
    set enable_seqscan = off
    set enable_hashjoin = off
    set enable_mergejoin = off
    as $$
    #variable_conflict use_column
    declare
      v_locked text[];
    begin
      select coalesce(array_agg(l.tenant_id), '{}') into v_locked
      from (select b.tenant_id from budgets b
            where b.tenant_id = any(p_release_tenants || p_settle_tenants || p_reserve_tenants)
            order by b.tenant_id
            for update of b) l;

      if cardinality(p_release_tenants) = 1 then
        return query select ${answers("release", "r", "1")}
        from budget_release(p_release_tenants[1], p_release_reservations[1], p_release_reasons[1], p_release_nows[1]) r;
      elsif cardinality(p_release_tenants) > 1 then
        return query select ${answers("release", "r", "r.item")}
        from budget_release_batch(p_release_tenants, p_release_reservations, p_release_reasons, p_release_nows) r;
      end if;

      if cardinality(p_settle_tenants) = 1 then
        return query select ${answers("settle", "s", "1")}
        from budget_settle(p_settle_tenants[1], p_settle_reservations[1], p_settle_actuals[1], p_settle_nows[1], true) s;
      elsif cardinality(p_settle_tenants) > 1 then
        return query select ${answers("settle", "s", "s.item")}
        from budget_settle_batch(p_settle_tenants, p_settle_reservations, p_settle_actuals, p_settle_nows) s;
      end if;

      if cardinality(p_reserve_tenants) = 1 and not p_reserve_tenants[1] = any(v_locked) then
        return query select 'reserve'::text, 1, 'deferred'::text, ${sql.raw([...RESERVE_COLUMNS, ...RESERVATION_COLUMNS].map((c) => `null::${TYPES[c]}`).join(", "))};
      elsif cardinality(p_reserve_tenants) = 1 then
        return query select ${answers("reserve", "r", "1")}
        from budget_reserve(p_reserve_tenants[1], p_reserve_executions[1], p_reserve_traces[1], p_reserve_amounts[1], p_reserve_reservations[1],
                            p_reserve_nows[1], p_reserve_expires[1], p_default_limits[1], p_default_hards[1], p_default_periods[1], p_default_thresholds[1], true) r;
      elsif cardinality(p_reserve_tenants) > 1 then
        return query select ${answers("reserve", "r", "r.item")}
        from budget_reserve_batch(p_reserve_tenants, p_reserve_executions, p_reserve_traces, p_reserve_amounts, p_reserve_reservations,
                                  p_reserve_nows, p_reserve_expires, p_default_limits, p_default_hards, p_default_periods, p_default_thresholds) r;
      end if;
    end
    $$
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop function budget_batch(text[], text[], text[], timestamptz[], text[], text[], int8[], timestamptz[],
      text[], text[], text[], int8[], text[], timestamptz[], timestamptz[], int8[], boolean[], text[], float8[])
  `.execute(db);
}
