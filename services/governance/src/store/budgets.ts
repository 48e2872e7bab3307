/**
 * Every SQL statement of the budgets area. The guarantee this file exists for: a tenant's spend
 * plus open reservations never exceeds a hard limit, however many processes share the database.
 *
 * How: each operation is ONE statement that starts by locking the tenant's budget row
 * (`select … for update` in the first CTE) and decides from the locked, latest version of that
 * row. Reserve's decision `not hard or spent + reserved + amount <= limit` and the increment of
 * `reserved` happen in the same statement under the same row lock, so two reservations can never
 * both see the same headroom (the naive check-then-record does exactly that: see
 * test/budget-race.test.ts). Period rollover, the lazy release of expired reservations and the
 * "once per period" alert markers are computed in the same statements from the same locked row,
 * so they are atomic too. Lock order is always budget row first, then reservation rows, so the
 * statements cannot deadlock each other.
 */
import { sql, type Expression, type Kysely, type RawBuilder, type Selectable, type Transaction } from "kysely";
import { uuidv7 } from "@clasper/core";
import { evaluateBudget, type BudgetCheckResult, type BudgetDefaults, type BudgetFigures } from "../budget-check.js";
import { emitBudgetEvent } from "./budget-events.js";
import { preparedStatement } from "./prepared-statement.js";
import type { GovernanceDatabase } from "./schema.js";
import type { BudgetPeriodValue, BudgetReservationsTable, BudgetsTable } from "./schema-budgets.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export type BudgetRow = Selectable<BudgetsTable>;
export type ReservationRow = Selectable<BudgetReservationsTable>;

/** Default reservation lifetime (ReserveBudgetRequest.ttl_ms = 0). */
export const DEFAULT_RESERVATION_TTL_MS = 15 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Periods: written once, in SQL, so every statement rolls over the same way.

function timestamp(now: Date): RawBuilder<Date> {
  return sql<Date>`${now.toISOString()}::timestamptz`;
}

/**
 * The period containing `now`, in UTC: daily from 00:00, weekly from Monday 00:00, monthly from
 * the 1st 00:00 (date_trunc on a UTC timestamp, so the session time zone never matters). A
 * budget of period "none" starts now and never ends.
 */
function periodContaining(period: Expression<string>, now: RawBuilder<Date>): { start: RawBuilder<Date>; end: RawBuilder<Date | null> } {
  const truncated = sql`date_trunc(case ${period} when 'daily' then 'day' when 'weekly' then 'week' else 'month' end, ${now} at time zone 'UTC')`;
  const step = sql`case ${period} when 'daily' then interval '1 day' when 'weekly' then interval '7 days' else interval '1 month' end`;
  return {
    start: sql<Date>`case when ${period} = 'none' then ${now} else ${truncated} at time zone 'UTC' end`,
    end: sql<Date | null>`case when ${period} = 'none' then null else (${truncated} + ${step}) at time zone 'UTC' end`,
  };
}

/**
 * A budget row's figures as of `now`: once `now` reaches period_end, spend starts again from zero
 * in the period containing `now` (periods skipped while idle are skipped). `table` names the row
 * (the locked CTE or the table itself).
 */
function rolledOver(table: string, now: RawBuilder<Date>) {
  const col = (name: string) => sql.ref(`${table}.${name}`);
  const rolls = sql<boolean>`(${col("period_end")} is not null and ${col("period_end")} <= ${now})`;
  const next = periodContaining(sql<string>`${col("period")}`, now);
  return {
    rolls,
    spent: sql<bigint>`(case when ${rolls} then 0::int8 else ${col("spent_micros")} end)`,
    periodStart: sql<Date>`(case when ${rolls} then ${next.start} else ${col("period_start")} end)`,
    periodEnd: sql<Date | null>`(case when ${rolls} then ${next.end} else ${col("period_end")} end)`,
  };
}

// ---------------------------------------------------------------------------------------------
// Budgets

export interface BudgetChange {
  limitMicros: bigint;
  /** Unset: monthly on create, unchanged on update. */
  period?: BudgetPeriodValue;
  /** Unset: true on create, unchanged on update. */
  hardLimit?: boolean;
  /** Unset: 0.8 on create, unchanged on update. */
  alertThreshold?: number;
}

/**
 * POST /budget: creates the tenant's budget or changes it in one statement. Spend in the current
 * period is kept; a changed period starts the period containing `now` (spend still kept), and a
 * period that has ended rolls over first.
 */
export async function upsertBudget(db: Executor, tenantId: string, change: BudgetChange, now: Date): Promise<BudgetRow> {
  const at = timestamp(now);
  const period = change.period ?? "monthly";
  const fresh = periodContaining(sql<string>`${period}::text`, at);
  const givenPeriod = sql<string | null>`${change.period ?? null}::text`;
  return db
    .insertInto("budgets")
    .values({
      tenant_id: tenantId,
      limit_micros: change.limitMicros.toString(),
      period,
      period_start: fresh.start,
      period_end: fresh.end,
      hard_limit: change.hardLimit ?? true,
      alert_threshold: change.alertThreshold ?? 0.8,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) =>
      oc.column("tenant_id").doUpdateSet((eb) => {
        const current = rolledOver("budgets", at);
        const newPeriod = sql<string>`coalesce(${givenPeriod}, ${eb.ref("budgets.period")})`;
        const restart = sql<boolean>`((${givenPeriod} is not null and ${givenPeriod} <> ${eb.ref("budgets.period")}) or ${current.rolls})`;
        const bounds = periodContaining(newPeriod, at);
        return {
          limit_micros: eb.ref("excluded.limit_micros"),
          hard_limit: change.hardLimit ?? eb.ref("budgets.hard_limit"),
          alert_threshold: change.alertThreshold ?? eb.ref("budgets.alert_threshold"),
          period: sql<BudgetPeriodValue>`${newPeriod}`,
          spent_micros: current.spent,
          period_start: sql<Date>`case when ${restart} then ${bounds.start} else ${eb.ref("budgets.period_start")} end`,
          period_end: sql<Date | null>`case when ${restart} then ${bounds.end} else ${eb.ref("budgets.period_end")} end`,
          is_default: false,
          updated_at: now,
        };
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The tenant's budget as of `now` (rolled over when its period has ended), or undefined. Reads only. */
export async function findBudget(db: Executor, tenantId: string, now: Date): Promise<BudgetRow | undefined> {
  const current = rolledOver("budgets", timestamp(now));
  return db
    .selectFrom("budgets")
    .selectAll()
    .select([current.spent.as("spent_micros"), current.periodStart.as("period_start"), current.periodEnd.as("period_end")])
    .where("tenant_id", "=", tenantId)
    .executeTakeFirst();
}

/** A budget row's figures for evaluateBudget. */
export function figuresOf(row: Pick<BudgetRow, "limit_micros" | "spent_micros" | "reserved_micros" | "hard_limit" | "alert_threshold">): BudgetFigures {
  return {
    limitMicros: row.limit_micros,
    spentMicros: row.spent_micros,
    reservedMicros: row.reserved_micros,
    hardLimit: row.hard_limit,
    alertThreshold: row.alert_threshold,
  };
}

/** The figures a reservation would face: the tenant's budget, or the default one it would get. */
export async function currentFigures(db: Executor, tenantId: string, defaults: BudgetDefaults, now: Date): Promise<BudgetFigures> {
  const row = await findBudget(db, tenantId, now);
  if (row) return figuresOf(row);
  return { limitMicros: defaults.limitMicros, spentMicros: 0n, reservedMicros: 0n, hardLimit: defaults.hardLimit, alertThreshold: defaults.alertThreshold };
}

/** POST /budget/check and cost forecasts: would `estimate` fit now? Reserves nothing. */
export async function checkBudget(db: Executor, tenantId: string, estimate: bigint, defaults: BudgetDefaults, now: Date): Promise<BudgetCheckResult & { figures: BudgetFigures }> {
  const figures = await currentFigures(db, tenantId, defaults, now);
  return { ...evaluateBudget(figures, estimate), figures };
}

/**
 * Creates the configured default budget for a tenant that has none. `on conflict do nothing`
 * makes concurrent first requests agree on one row (the losers wait for the winner's insert to
 * commit and then use its row), so the first reservations of a new tenant are as safe as later ones.
 */
export async function ensureDefaultBudget(db: Executor, tenantId: string, defaults: BudgetDefaults, now: Date): Promise<void> {
  const bounds = periodContaining(sql<string>`${defaults.period}::text`, timestamp(now));
  await db
    .insertInto("budgets")
    .values({
      tenant_id: tenantId,
      limit_micros: defaults.limitMicros.toString(),
      period: defaults.period,
      period_start: bounds.start,
      period_end: bounds.end,
      hard_limit: defaults.hardLimit,
      alert_threshold: defaults.alertThreshold,
      is_default: true,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column("tenant_id").doNothing())
    .execute();
}

// ---------------------------------------------------------------------------------------------
// Reservations

export interface ReserveInput {
  /** Idempotency key: a second reserve for the same execution returns the first reservation. */
  executionId: string;
  traceId?: string | undefined;
  /** Worst-case cost, micro-dollars, ≥ 0. */
  amountMicros: bigint;
  /** Lifetime; DEFAULT_RESERVATION_TTL_MS when unset. */
  ttlMs?: number | undefined;
  /** Budget created for a tenant that has none. */
  defaults: BudgetDefaults;
  now: Date;
}

export type ReserveOutcome =
  /** Reserved now. `check` describes the budget before this reservation. */
  | { status: "reserved"; reservation: ReservationRow; check: BudgetCheckResult; figures: BudgetFigures }
  /** The execution already had a reservation (in any state); nothing new was held. */
  | { status: "existing"; reservation: ReservationRow; check: BudgetCheckResult; figures: BudgetFigures }
  /** A hard budget has no room for `amountMicros`; nothing was held. */
  | { status: "denied"; check: BudgetCheckResult; figures: BudgetFigures };

/**
 * Holds `amountMicros` against the tenant's budget for one execution: one statement that locks
 * the budget row, rolls the period over if it ended, releases the tenant's expired reservations,
 * and adds the amount to `reserved` only when `not hard or spent + reserved + amount <= limit`.
 * Safe under any concurrency across processes; a tenant without a budget gets `defaults` first.
 * Emits budget_exceeded (once per period) when a hard budget denies; pass a transaction to make
 * the event atomic with the statement.
 */
export async function reserveBudget(db: Executor, tenantId: string, input: ReserveInput): Promise<ReserveOutcome> {
  const outcome = (await reserveOnce(db, tenantId, input)) ?? (await ensureDefaultBudget(db, tenantId, input.defaults, input.now), await reserveOnce(db, tenantId, input));
  if (!outcome) throw new Error(`budget of tenant ${tenantId} is missing right after it was created`);
  return outcome;
}

/**
 * The opening CTEs Reserve and the reconciler share: `cur`, the tenant's budget row locked, and
 * `expired`, its open reservations past `now` marked expired (their amounts returned).
 */
function lockBudgetExpiringHolds(db: Executor, tenantId: string, now: RawBuilder<Date>) {
  return db
    .with("cur", (qb) => qb.selectFrom("budgets").selectAll().where("tenant_id", "=", tenantId).forUpdate())
    .with("expired", (qb) =>
      qb
        .updateTable("budget_reservations")
        .from("cur")
        .set({ status: "expired", closed_at: now, release_reason: "expired" })
        .whereRef("budget_reservations.tenant_id", "=", "cur.tenant_id")
        .where("budget_reservations.status", "=", "open")
        .where("budget_reservations.expires_at", "<=", now)
        .returning("budget_reservations.amount_micros"),
    );
}

type ReserveParam = "tenantId" | "executionId" | "traceId" | "amount" | "reservationId" | "now" | "expiresAt";

const reserveStatement = preparedStatement((db, p: (name: ReserveParam) => string) => {
  const now = sql<Date>`${p("now")}::timestamptz`;
  const amount = sql<bigint>`${p("amount")}::int8`;
  const current = rolledOver("cur", now);
  const fits = sql<boolean>`(dec.spent_eff + dec.reserved_micros - dec.freed + ${amount} <= dec.limit_micros)`;
  return lockBudgetExpiringHolds(db, p("tenantId"), now)
    .with("dec", (qb) =>
      qb.selectFrom("cur").select((eb) => [
        "cur.tenant_id",
        "cur.limit_micros",
        "cur.reserved_micros",
        "cur.hard_limit",
        "cur.alert_threshold",
        "cur.exceeded_period_start",
        current.rolls.as("rolls"),
        current.spent.as("spent_eff"),
        current.periodStart.as("ps_eff"),
        current.periodEnd.as("pe_eff"),
        sql<bigint>`(select coalesce(sum(amount_micros), 0)::int8 from expired)`.as("freed"),
        eb
          .exists(
            eb
              .selectFrom("budget_reservations")
              .select(sql.lit(1).as("one"))
              .where("budget_reservations.tenant_id", "=", p("tenantId"))
              .where("budget_reservations.execution_id", "=", p("executionId")),
          )
          .as("duplicate"),
      ]),
    )
    .with("gate", (qb) =>
      qb
        .selectFrom("dec")
        .selectAll("dec")
        .select([
          sql<bigint>`(dec.reserved_micros - dec.freed)`.as("reserved_eff"),
          sql<boolean>`(not dec.duplicate and (not dec.hard_limit or ${fits}))`.as("ok"),
          // A hard denial alerts once per period: the marker moves to this period in the same statement.
          sql<boolean>`(not dec.duplicate and dec.hard_limit and not ${fits} and dec.exceeded_period_start is distinct from dec.ps_eff)`.as("exceeded_due"),
        ]),
    )
    .with("ins", (qb) =>
      qb
        .insertInto("budget_reservations")
        .columns(["tenant_id", "reservation_id", "execution_id", "trace_id", "amount_micros", "status", "created_at", "expires_at"])
        .expression((eb) =>
          eb
            .selectFrom("gate")
            .select([
              sql<string>`${p("tenantId")}::text`.as("tenant_id"),
              sql<string>`${p("reservationId")}::text`.as("reservation_id"),
              sql<string>`${p("executionId")}::text`.as("execution_id"),
              sql<string | null>`${p("traceId")}::text`.as("trace_id"),
              amount.as("amount_micros"),
              sql<"open">`'open'`.as("status"),
              now.as("created_at"),
              sql<Date>`${p("expiresAt")}::timestamptz`.as("expires_at"),
            ])
            .where("gate.ok", "=", true),
        )
        // A concurrent reserve of the same execution won: hold nothing (upd adds only what ins inserted).
        .onConflict((oc) => oc.columns(["tenant_id", "execution_id"]).doNothing())
        .returningAll(),
    )
    .with("upd", (qb) =>
      qb
        .updateTable("budgets")
        .from("gate")
        .set((eb) => ({
          spent_micros: eb.ref("gate.spent_eff"),
          period_start: eb.ref("gate.ps_eff"),
          period_end: eb.ref("gate.pe_eff"),
          reserved_micros: sql<bigint>`gate.reserved_eff + (select coalesce(sum(amount_micros), 0)::int8 from ins)`,
          exceeded_period_start: sql<Date | null>`case when gate.exceeded_due then gate.ps_eff else ${eb.ref("budgets.exceeded_period_start")} end`,
        }))
        .whereRef("budgets.tenant_id", "=", "gate.tenant_id")
        .where(sql<boolean>`(gate.rolls or gate.freed > 0 or gate.exceeded_due or exists (select 1 from ins))`)
        .returning("budgets.tenant_id"),
    )
    .selectFrom("gate")
    .leftJoin("ins", (join) => join.onTrue())
    .select([
      "gate.limit_micros",
      "gate.spent_eff",
      "gate.reserved_eff",
      "gate.hard_limit",
      "gate.alert_threshold",
      "gate.ok",
      "gate.duplicate",
      "gate.exceeded_due",
      "gate.ps_eff",
    ])
    .selectAll("ins");
});

async function reserveOnce(db: Executor, tenantId: string, input: ReserveInput): Promise<ReserveOutcome | undefined> {
  const expiresAt = new Date(input.now.getTime() + (input.ttlMs || DEFAULT_RESERVATION_TTL_MS));
  const [row] = await reserveStatement(db, {
    tenantId,
    executionId: input.executionId,
    traceId: input.traceId || null,
    amount: input.amountMicros.toString(),
    reservationId: uuidv7(),
    now: input.now.toISOString(),
    expiresAt: expiresAt.toISOString(),
  });
  if (!row) return undefined;

  const figures: BudgetFigures = {
    limitMicros: row.limit_micros,
    spentMicros: row.spent_eff,
    reservedMicros: row.reserved_eff,
    hardLimit: row.hard_limit,
    alertThreshold: row.alert_threshold,
  };
  const check = evaluateBudget(figures, input.amountMicros);
  if (row.reservation_id !== null) {
    return { status: "reserved", reservation: reservationFrom(row), check, figures };
  }
  if (row.duplicate || row.ok) {
    // ok without an insert: a concurrent reserve of the same execution committed first.
    const existing = await findReservationByExecution(db, tenantId, input.executionId);
    if (!existing) throw new Error(`reservation of execution ${input.executionId} vanished`);
    return { status: "existing", reservation: existing, check: { ...check, allowed: true }, figures };
  }
  if (row.exceeded_due) {
    await emitBudgetEvent(db, tenantId, {
      eventType: "budget_exceeded",
      periodStart: row.ps_eff,
      traceId: input.traceId,
      data: {
        limit_micros: figures.limitMicros.toString(),
        spent_micros: figures.spentMicros.toString(),
        reserved_micros: figures.reservedMicros.toString(),
        requested_micros: input.amountMicros.toString(),
        execution_id: input.executionId,
        description: `Hard budget denied a reservation: ${check.warning}`,
      },
    });
  }
  return { status: "denied", check, figures };
}

function reservationFrom(row: { [K in keyof ReservationRow]: ReservationRow[K] | null }): ReservationRow {
  return row as ReservationRow;
}

export async function findReservation(db: Executor, tenantId: string, reservationId: string): Promise<ReservationRow | undefined> {
  return db
    .selectFrom("budget_reservations")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("reservation_id", "=", reservationId)
    .executeTakeFirst();
}

export async function findReservationByExecution(db: Executor, tenantId: string, executionId: string): Promise<ReservationRow | undefined> {
  return db
    .selectFrom("budget_reservations")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("execution_id", "=", executionId)
    .executeTakeFirst();
}

// ---------------------------------------------------------------------------------------------
// Settle and release

export interface SettleInput {
  reservationId: string;
  /** Actual cost, micro-dollars; may exceed the reservation (it is charged in full). */
  actualMicros: bigint;
  /** For the audit record. */
  model?: string | undefined;
  now: Date;
}

export interface SettlementResult {
  spentMicros: bigint;
  remainingMicros: bigint;
  warning: string;
  thresholdCrossed: boolean;
  exceeded: boolean;
}

export type SettleOutcome =
  | { status: "settled"; settlement: SettlementResult; reservation: ReservationRow }
  /** Settled before: the first settlement's answer, unchanged. */
  | { status: "already_settled"; settlement: SettlementResult; reservation: ReservationRow }
  | { status: "released"; reservation: ReservationRow }
  | { status: "not_found" };

/**
 * Charges a reservation's actual cost and frees its hold, in one statement under the budget row
 * lock. Settles at most once: a repeated settle returns the stored first result. A reservation
 * that expired (its hold already returned) is still charged: the money was spent. Emits
 * budget_warning / budget_exceeded once per period; pass a transaction to make them atomic with it.
 */
/**
 * The opening CTEs Settle and Release share: `cur`, the tenant's budget row locked, then `res`, the
 * tenant's reservation `reservationId` locked (empty when it is not the tenant's).
 */
function lockBudgetAndReservation(db: Executor, tenantId: string, reservationId: string) {
  return db
    .with("cur", (qb) => qb.selectFrom("budgets").selectAll().where("tenant_id", "=", tenantId).forUpdate())
    .with("res", (qb) =>
      qb
        .selectFrom("budget_reservations")
        .innerJoin("cur", "cur.tenant_id", "budget_reservations.tenant_id")
        .selectAll("budget_reservations")
        .where("budget_reservations.reservation_id", "=", reservationId)
        .forUpdate(["budget_reservations"]),
    );
}

type SettleParam = "tenantId" | "reservationId" | "actual" | "now";

const settleStatement = preparedStatement((db, p: (name: SettleParam) => string) => {
  const now = sql<Date>`${p("now")}::timestamptz`;
  const actual = sql<bigint>`${p("actual")}::int8`;
  const current = rolledOver("cur", now);
  const threshold = sql<number>`(dec.alert_threshold * dec.limit_micros)`;
  return lockBudgetAndReservation(db, p("tenantId"), p("reservationId"))
    .with("dec", (qb) =>
      qb
        .selectFrom("cur")
        .innerJoin("res", (join) => join.onTrue())
        .select([
          "res.reservation_id",
          "res.amount_micros",
          "cur.tenant_id",
          "cur.limit_micros",
          "cur.hard_limit",
          "cur.alert_threshold",
          "cur.warned_period_start",
          "cur.exceeded_period_start",
          current.spent.as("spent_before"),
          sql<bigint>`(${current.spent} + ${actual})`.as("spent_new"),
          current.periodStart.as("ps_eff"),
          current.periodEnd.as("pe_eff"),
          // An expired reservation's hold was already returned by the reconciler.
          sql<bigint>`(cur.reserved_micros - case when res.status = 'open' then res.amount_micros else 0::int8 end)`.as("reserved_new"),
        ])
        .where("res.status", "in", ["open", "expired"]),
    )
    .with("gate", (qb) =>
      qb
        .selectFrom("dec")
        .selectAll("dec")
        .select([
          sql<bigint>`(dec.limit_micros - dec.spent_new - dec.reserved_new)`.as("remaining_after"),
          sql<boolean>`(dec.spent_before < ${threshold} and dec.spent_new >= ${threshold} and dec.spent_new > 0)`.as("crossed"),
          sql<boolean>`(dec.spent_new > dec.limit_micros)`.as("exceeded"),
          sql<boolean>`(dec.spent_new > 0 and dec.spent_new >= ${threshold} and dec.warned_period_start is distinct from dec.ps_eff)`.as("warn_due"),
          sql<boolean>`(dec.spent_new > dec.limit_micros and dec.exceeded_period_start is distinct from dec.ps_eff)`.as("exceeded_due"),
          sql<string>`concat_ws('; ',
            case when ${actual} > dec.amount_micros then format('actual cost %s exceeded the reservation of %s micro-dollars', ${actual}, dec.amount_micros) end,
            case when dec.spent_new > dec.limit_micros then format('budget exceeded: spent %s of %s micro-dollars (%s limit)', dec.spent_new, dec.limit_micros, case when dec.hard_limit then 'hard' else 'soft' end)
                 when dec.spent_new > 0 and dec.spent_new >= ${threshold} then format('budget usage at %s%% - approaching limit', to_char(dec.spent_new::float8 / dec.limit_micros * 100, 'FM990.0')) end)`.as("warning"),
        ]),
    )
    .with("upd", (qb) =>
      qb
        .updateTable("budgets")
        .from("gate")
        .set((eb) => ({
          spent_micros: eb.ref("gate.spent_new"),
          reserved_micros: eb.ref("gate.reserved_new"),
          period_start: eb.ref("gate.ps_eff"),
          period_end: eb.ref("gate.pe_eff"),
          warned_period_start: sql<Date | null>`case when gate.warn_due then gate.ps_eff else ${eb.ref("budgets.warned_period_start")} end`,
          exceeded_period_start: sql<Date | null>`case when gate.exceeded_due then gate.ps_eff else ${eb.ref("budgets.exceeded_period_start")} end`,
        }))
        .whereRef("budgets.tenant_id", "=", "gate.tenant_id")
        .returning("budgets.tenant_id"),
    )
    .with("done", (qb) =>
      qb
        .updateTable("budget_reservations")
        .from("gate")
        .set((eb) => ({
          status: "settled",
          actual_micros: actual,
          closed_at: now,
          spent_after_micros: eb.ref("gate.spent_new"),
          remaining_after_micros: eb.ref("gate.remaining_after"),
          warning: eb.ref("gate.warning"),
          threshold_crossed: eb.ref("gate.crossed"),
          exceeded: eb.ref("gate.exceeded"),
        }))
        .whereRef("budget_reservations.tenant_id", "=", "gate.tenant_id")
        .whereRef("budget_reservations.reservation_id", "=", "gate.reservation_id")
        .returningAll("budget_reservations"),
    )
    .selectFrom("res")
    .leftJoin("gate", (join) => join.onTrue())
    .leftJoin("done", (join) => join.onTrue())
    .selectAll("res")
    .select([
      "gate.warn_due",
      "gate.exceeded_due",
      "gate.limit_micros",
      "gate.spent_new",
      "gate.remaining_after",
      "gate.warning as new_warning",
      "gate.crossed",
      "gate.exceeded as now_exceeded",
      "gate.ps_eff",
      "done.closed_at as done_at",
    ]);
});

export async function settleBudget(db: Executor, tenantId: string, input: SettleInput): Promise<SettleOutcome> {
  const [row] = await settleStatement(db, {
    tenantId,
    reservationId: input.reservationId,
    actual: input.actualMicros.toString(),
    now: input.now.toISOString(),
  });
  if (!row) return { status: "not_found" };

  if (row.spent_new !== null && row.done_at !== null) {
    const settlement: SettlementResult = {
      spentMicros: row.spent_new,
      remainingMicros: row.remaining_after ?? 0n,
      warning: row.new_warning ?? "",
      thresholdCrossed: row.crossed ?? false,
      exceeded: row.now_exceeded ?? false,
    };
    const limit = row.limit_micros ?? 0n;
    const base = { reservation_id: row.reservation_id, execution_id: row.execution_id, ...(input.model ? { model: input.model } : {}) };
    if (row.warn_due) {
      await emitBudgetEvent(db, tenantId, {
        eventType: "budget_warning",
        periodStart: row.ps_eff!,
        traceId: row.trace_id ?? undefined,
        data: {
          ...base,
          percent_used: limit > 0n ? Number(((Number(row.spent_new) / Number(limit)) * 100).toFixed(2)) : 0,
          remaining_micros: settlement.remainingMicros.toString(),
          description: settlement.warning,
        },
      });
    }
    if (row.exceeded_due) {
      await emitBudgetEvent(db, tenantId, {
        eventType: "budget_exceeded",
        periodStart: row.ps_eff!,
        traceId: row.trace_id ?? undefined,
        data: { ...base, limit_micros: limit.toString(), spent_micros: settlement.spentMicros.toString(), description: settlement.warning },
      });
    }
    const reservation: ReservationRow = {
      ...row,
      status: "settled",
      actual_micros: input.actualMicros,
      closed_at: input.now,
      spent_after_micros: settlement.spentMicros,
      remaining_after_micros: settlement.remainingMicros,
      warning: settlement.warning,
      threshold_crossed: settlement.thresholdCrossed,
      exceeded: settlement.exceeded,
    };
    return { status: "settled", settlement, reservation: pickReservation(reservation) };
  }
  const reservation = pickReservation(row);
  if (reservation.status === "settled") return { status: "already_settled", settlement: storedSettlement(reservation), reservation };
  return { status: "released", reservation };
}

function storedSettlement(row: ReservationRow): SettlementResult {
  return {
    spentMicros: row.spent_after_micros ?? 0n,
    remainingMicros: row.remaining_after_micros ?? 0n,
    warning: row.warning ?? "",
    thresholdCrossed: row.threshold_crossed ?? false,
    exceeded: row.exceeded ?? false,
  };
}

const RESERVATION_COLUMNS = [
  "tenant_id",
  "reservation_id",
  "execution_id",
  "trace_id",
  "amount_micros",
  "status",
  "created_at",
  "expires_at",
  "closed_at",
  "release_reason",
  "actual_micros",
  "spent_after_micros",
  "remaining_after_micros",
  "warning",
  "threshold_crossed",
  "exceeded",
] as const satisfies readonly (keyof ReservationRow)[];

function pickReservation(row: ReservationRow): ReservationRow {
  return Object.fromEntries(RESERVATION_COLUMNS.map((key) => [key, row[key]])) as unknown as ReservationRow;
}

export type ReleaseOutcome =
  | { status: "released"; releasedMicros: bigint; reservation: ReservationRow }
  /** Already settled, released or expired: nothing returned to the budget. */
  | { status: "closed"; releasedMicros: 0n; reservation: ReservationRow }
  | { status: "not_found" };

/** Returns an open reservation's hold to the budget without spend (at most once), in one statement. */
type ReleaseParam = "tenantId" | "reservationId" | "reason" | "now";

const releaseStatement = preparedStatement((db, p: (name: ReleaseParam) => string) =>
  lockBudgetAndReservation(db, p("tenantId"), p("reservationId"))
    .with("upd", (qb) =>
      qb
        .updateTable("budgets")
        .from("res")
        .set({ reserved_micros: sql<bigint>`${sql.ref("budgets.reserved_micros")} - res.amount_micros` })
        .whereRef("budgets.tenant_id", "=", "res.tenant_id")
        .where("res.status", "=", "open")
        .returning("budgets.tenant_id"),
    )
    .with("done", (qb) =>
      qb
        .updateTable("budget_reservations")
        .from("res")
        .set({ status: "released", closed_at: sql<Date>`${p("now")}::timestamptz`, release_reason: sql<string>`${p("reason")}::text` })
        .whereRef("budget_reservations.tenant_id", "=", "res.tenant_id")
        .whereRef("budget_reservations.reservation_id", "=", "res.reservation_id")
        .where("res.status", "=", "open")
        .returningAll("budget_reservations"),
    )
    .selectFrom("res")
    .leftJoin("done", (join) => join.onTrue())
    .selectAll("res")
    .select("done.closed_at as done_at"),
);

export async function releaseBudget(db: Executor, tenantId: string, reservationId: string, reason: string, now: Date): Promise<ReleaseOutcome> {
  const [row] = await releaseStatement(db, { tenantId, reservationId, reason: reason || "released", now: now.toISOString() });
  if (!row) return { status: "not_found" };
  const reservation = pickReservation(row);
  if (row.done_at === null) return { status: "closed", releasedMicros: 0n, reservation };
  return {
    status: "released",
    releasedMicros: row.amount_micros,
    reservation: { ...reservation, status: "released", closed_at: now, release_reason: reason || "released" },
  };
}

/**
 * Returns the holds of a tenant's reservations that expired unsettled, in one statement under the
 * budget row lock (the reconciler's unit of work; Reserve does the same inside its own statement).
 */
type ExpireParam = "tenantId" | "now";

const expireStatement = preparedStatement((db, p: (name: ExpireParam) => string) => {
  const now = sql<Date>`${p("now")}::timestamptz`;
  return lockBudgetExpiringHolds(db, p("tenantId"), now)
    .with("freed", (qb) =>
      qb.selectFrom("expired").select([sql<bigint>`coalesce(sum(amount_micros), 0)::int8`.as("amount"), sql<number>`count(*)::int4`.as("count")]),
    )
    .with("upd", (qb) =>
      qb
        .updateTable("budgets")
        .from("freed")
        .set({ reserved_micros: sql<bigint>`${sql.ref("budgets.reserved_micros")} - freed.amount` })
        .where("budgets.tenant_id", "=", p("tenantId"))
        .where("freed.count", ">", 0)
        .returning("budgets.tenant_id"),
    )
    .selectFrom("freed")
    .selectAll();
});

export async function releaseExpiredReservations(db: Executor, tenantId: string, now: Date): Promise<{ count: number; releasedMicros: bigint }> {
  const [row] = await expireStatement(db, { tenantId, now: now.toISOString() });
  if (!row) throw new Error("releaseExpiredReservations: the aggregate returned no row");
  return { count: row.count, releasedMicros: row.amount };
}

/** Tenants that have at least one open reservation past its expiry (the reconciler's work list). */
export async function tenantsWithExpiredReservations(db: Executor, now: Date, limit = 500): Promise<string[]> {
  const rows = await db
    .selectFrom("budget_reservations")
    .select("tenant_id")
    .distinct()
    .where("status", "=", "open")
    .where("expires_at", "<=", now)
    .limit(limit)
    .execute();
  return rows.map((r) => r.tenant_id);
}
