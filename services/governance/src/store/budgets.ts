/**
 * Every SQL statement of the budgets area. The guarantee this file exists for: a tenant's spend
 * plus open reservations never exceeds a hard limit, however many processes share the database.
 *
 * How: Reserve, Settle, Release and the reconciler's expiry are PL/pgSQL functions (migration
 * 20261126000000_budget_functions), each called in ONE statement. Each function starts by locking
 * the tenant's budget row (`select … for update`) and decides from the locked, latest version of
 * that row. Reserve's decision `not hard or spent + reserved + amount <= limit` and the increment
 * of `reserved` happen under the same row lock, so two reservations can never both see the same
 * headroom (the naive check-then-record does exactly that: see test/budget-race.test.ts). Period
 * rollover, the lazy release of expired reservations and the "once per period" alert markers are
 * computed under the same lock, so they are atomic too. Lock order is always budget row first,
 * then reservation rows, so the functions cannot deadlock each other.
 *
 * Transactions: called with the Kysely handle, an operation runs as one autocommit statement (one
 * round trip). Only when a budget_warning / budget_exceeded audit event is due (at most once per
 * period and event type) does the function write nothing and answer `deferred`; the operation is
 * then repeated in a transaction that also appends the event, so the event commits with the
 * change that caused it. Called with a Transaction, everything happens in that transaction.
 *
 * The RPC handlers do not call these one by one: src/budget-batcher.ts sends concurrent calls as
 * one batch call (store/budget-batches.ts), which gives each item the outcome these functions
 * would have given it and uses them for a lone call, a deferred item, or a failed batch.
 */
import { sql, type Expression, type Kysely, type RawBuilder, type Selectable, type Transaction } from "kysely";
import { uuidv7 } from "@clasper/core";
import { withTransaction } from "@clasper/db";
import { evaluateBudget, type BudgetCheckResult, type BudgetDefaults, type BudgetFigures } from "../budget-check.js";
import { emitBudgetEvent } from "./budget-events.js";
import { schemaFunction, storedFunction } from "./prepared-statement.js";
import type { GovernanceDatabase } from "./schema.js";
import type { BudgetPeriodValue, BudgetReservationsTable, BudgetsTable } from "./schema-budgets.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export type BudgetRow = Selectable<BudgetsTable>;
export type ReservationRow = Selectable<BudgetReservationsTable>;

/** Default reservation lifetime (ReserveBudgetRequest.ttl_ms = 0). */
export const DEFAULT_RESERVATION_TTL_MS = 15 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Periods: defined once, as the SQL functions budget_period_start / budget_period_end, so every
// statement and function rolls over the same way.

function timestamp(now: Date): RawBuilder<Date> {
  return sql<Date>`${now.toISOString()}::timestamptz`;
}

/**
 * The period containing `now`, in UTC: daily from 00:00, weekly from Monday 00:00, monthly from
 * the 1st 00:00 (date_trunc on a UTC timestamp, so the session time zone never matters). A
 * budget of period "none" starts now and never ends.
 */
function periodContaining(db: Executor, period: Expression<string>, now: RawBuilder<Date>): { start: RawBuilder<Date>; end: RawBuilder<Date | null> } {
  return {
    start: sql<Date>`${schemaFunction(db, "budget_period_start")}(${period}, ${now})`,
    end: sql<Date | null>`${schemaFunction(db, "budget_period_end")}(${period}, ${now})`,
  };
}

/**
 * A budget row's figures as of `now`: once `now` reaches period_end, spend starts again from zero
 * in the period containing `now` (periods skipped while idle are skipped). `table` names the row.
 */
function rolledOver(db: Executor, table: string, now: RawBuilder<Date>) {
  const col = (name: string) => sql.ref(`${table}.${name}`);
  const rolls = sql<boolean>`(${col("period_end")} is not null and ${col("period_end")} <= ${now})`;
  const next = periodContaining(db, sql<string>`${col("period")}`, now);
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
  const fresh = periodContaining(db, sql<string>`${period}::text`, at);
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
        const current = rolledOver(db, "budgets", at);
        const newPeriod = sql<string>`coalesce(${givenPeriod}, ${eb.ref("budgets.period")})`;
        const restart = sql<boolean>`((${givenPeriod} is not null and ${givenPeriod} <> ${eb.ref("budgets.period")}) or ${current.rolls})`;
        const bounds = periodContaining(db, newPeriod, at);
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
  const current = rolledOver(db, "budgets", timestamp(now));
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

// ---------------------------------------------------------------------------------------------
// Operations: one function call each, repeated in a transaction when an audit event is due.

/** A store operation: undefined means "deferred" (an event is due; repeat it in a transaction). */
type Attempt<T> = (db: Executor, deferEvents: boolean) => Promise<T | undefined>;

async function withEvents<T>(db: Executor, attempt: Attempt<T>, what: string): Promise<T> {
  const inTransaction = async (trx: Executor) => {
    const outcome = await attempt(trx, false);
    if (outcome === undefined) throw new Error(`${what}: the function deferred inside a transaction`);
    return outcome;
  };
  if (db.isTransaction) return inTransaction(db);
  return (await attempt(db, true)) ?? withTransaction(db as Kysely<GovernanceDatabase>, inTransaction);
}

/** The columns every reservation-returning function answers with (all but the key). */
type ReservationColumns = Omit<ReservationRow, "tenant_id" | "reservation_id">;

function reservationOf(tenantId: string, reservationId: string, row: ReservationColumns): ReservationRow {
  return {
    tenant_id: tenantId,
    reservation_id: reservationId,
    execution_id: row.execution_id,
    trace_id: row.trace_id,
    amount_micros: row.amount_micros,
    status: row.status,
    created_at: row.created_at,
    expires_at: row.expires_at,
    closed_at: row.closed_at,
    release_reason: row.release_reason,
    actual_micros: row.actual_micros,
    spent_after_micros: row.spent_after_micros,
    remaining_after_micros: row.remaining_after_micros,
    warning: row.warning,
    threshold_crossed: row.threshold_crossed,
    exceeded: row.exceeded,
  };
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

/** What budget_reserve (and budget_reserve_batch, per item) answers. */
export interface ReserveRow {
  outcome: "reserved" | "existing" | "denied" | "deferred";
  limit_micros: bigint;
  spent_micros: bigint;
  reserved_micros: bigint;
  hard_limit: boolean;
  alert_threshold: number;
  /** budget_reserve only (a batch defers the items whose event is due). */
  exceeded_due?: boolean;
  /** Set when exceeded_due. */
  period_start?: Date | null;
}

const reserveCall = storedFunction<ReserveRow>("budget_reserve", [
  "text", "text", "text", "int8", "text", "timestamptz", "timestamptz", // tenant, execution, trace, amount, reservation, now, expires
  "int8", "boolean", "text", "float8", // the default budget
  "boolean", // defer events
]);

/**
 * Holds `amountMicros` against the tenant's budget for one execution: under the budget row lock,
 * rolls the period over if it ended, releases the tenant's expired reservations, and adds the
 * amount to `reserved` only when `not hard or spent + reserved + amount <= limit`. Safe under any
 * concurrency across processes; a tenant without a budget gets `defaults` first. Emits
 * budget_exceeded (once per period) when a hard budget denies, atomically with the denial.
 */
export async function reserveBudget(db: Executor, tenantId: string, input: ReserveInput): Promise<ReserveOutcome> {
  return withEvents(db, (exec, defer) => reserveOnce(exec, tenantId, input, defer), `reserve for execution ${input.executionId}`);
}

/** The values a reservation call sends besides the input: its new id and its expiry. */
export interface ReservationPlan {
  reservationId: string;
  expiresAt: Date;
  traceId: string | null;
}

export function planReservation(input: ReserveInput): ReservationPlan {
  return {
    reservationId: uuidv7(),
    expiresAt: new Date(input.now.getTime() + (input.ttlMs || DEFAULT_RESERVATION_TTL_MS)),
    traceId: input.traceId || null,
  };
}

async function reserveOnce(db: Executor, tenantId: string, input: ReserveInput, deferEvents: boolean): Promise<ReserveOutcome | undefined> {
  const plan = planReservation(input);
  const { defaults } = input;
  const row = await reserveCall(db, [
    tenantId,
    input.executionId,
    plan.traceId,
    input.amountMicros.toString(),
    plan.reservationId,
    input.now.toISOString(),
    plan.expiresAt.toISOString(),
    defaults.limitMicros.toString(),
    defaults.hardLimit,
    defaults.period,
    String(defaults.alertThreshold),
    deferEvents,
  ]);
  if (!row) throw new Error("budget_reserve returned no row");
  if (row.outcome === "deferred") return undefined;
  return reserveOutcome(db, tenantId, input, plan, row);
}

/** The outcome of a reservation the database decided (anything but deferred), with its event. */
export async function reserveOutcome(db: Executor, tenantId: string, input: ReserveInput, plan: ReservationPlan, row: ReserveRow): Promise<ReserveOutcome> {
  const figures = figuresOf(row);
  const check = evaluateBudget(figures, input.amountMicros);
  if (row.outcome === "reserved") {
    const reservation = reservationOf(tenantId, plan.reservationId, {
      execution_id: input.executionId,
      trace_id: plan.traceId,
      amount_micros: input.amountMicros,
      status: "open",
      created_at: input.now,
      expires_at: plan.expiresAt,
      closed_at: null,
      release_reason: null,
      actual_micros: null,
      spent_after_micros: null,
      remaining_after_micros: null,
      warning: null,
      threshold_crossed: null,
      exceeded: null,
    });
    return { status: "reserved", reservation, check, figures };
  }
  if (row.outcome === "existing") {
    const existing = await findReservationByExecution(db, tenantId, input.executionId);
    if (!existing) throw new Error(`reservation of execution ${input.executionId} vanished`);
    return { status: "existing", reservation: existing, check: { ...check, allowed: true }, figures };
  }
  if (row.outcome !== "denied") throw new Error(`reservation for execution ${input.executionId} was ${row.outcome}, not decided`);
  if (row.exceeded_due && row.period_start) {
    await emitBudgetEvent(db, tenantId, {
      eventType: "budget_exceeded",
      periodStart: row.period_start,
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

/** What budget_settle (and budget_settle_batch, per item) answers. */
export type SettleRow = ReservationColumns & {
  outcome: "settled" | "already_settled" | "released" | "not_found" | "deferred";
  /** budget_settle only, set when settled now (a batch defers the items whose event is due). */
  limit_micros?: bigint | null;
  warn_due?: boolean | null;
  exceeded_due?: boolean | null;
  /** Set when an event is due. */
  period_start?: Date | null;
};

const settleCall = storedFunction<SettleRow>("budget_settle", ["text", "text", "int8", "timestamptz", "boolean"]);

/**
 * Charges a reservation's actual cost and frees its hold, under the budget row lock. Settles at
 * most once: a repeated settle returns the stored first result. A reservation that expired (its
 * hold already returned) is still charged: the money was spent. Emits budget_warning /
 * budget_exceeded once per period, atomically with the settlement.
 */
export async function settleBudget(db: Executor, tenantId: string, input: SettleInput): Promise<SettleOutcome> {
  return withEvents(db, (exec, defer) => settleOnce(exec, tenantId, input, defer), `settle of reservation ${input.reservationId}`);
}

async function settleOnce(db: Executor, tenantId: string, input: SettleInput, deferEvents: boolean): Promise<SettleOutcome | undefined> {
  const row = await settleCall(db, [tenantId, input.reservationId, input.actualMicros.toString(), input.now.toISOString(), deferEvents]);
  if (!row) throw new Error("budget_settle returned no row");
  if (row.outcome === "deferred") return undefined;
  return settleOutcome(db, tenantId, input, row);
}

/** The outcome of a settlement the database decided (anything but deferred), with its events. */
export async function settleOutcome(db: Executor, tenantId: string, input: SettleInput, row: SettleRow): Promise<SettleOutcome> {
  switch (row.outcome) {
    case "deferred":
      throw new Error(`settle of reservation ${input.reservationId} was deferred, not decided`);
    case "not_found":
      return { status: "not_found" };
    case "released":
      return { status: "released", reservation: reservationOf(tenantId, input.reservationId, row) };
    case "already_settled":
      return { status: "already_settled", settlement: storedSettlement(row), reservation: reservationOf(tenantId, input.reservationId, row) };
  }
  const settlement = storedSettlement(row);
  const limit = row.limit_micros ?? 0n;
  const base = { reservation_id: input.reservationId, execution_id: row.execution_id, ...(input.model ? { model: input.model } : {}) };
  if (row.warn_due && row.period_start) {
    await emitBudgetEvent(db, tenantId, {
      eventType: "budget_warning",
      periodStart: row.period_start,
      traceId: row.trace_id ?? undefined,
      data: {
        ...base,
        percent_used: limit > 0n ? Number(((Number(settlement.spentMicros) / Number(limit)) * 100).toFixed(2)) : 0,
        remaining_micros: settlement.remainingMicros.toString(),
        description: settlement.warning,
      },
    });
  }
  if (row.exceeded_due && row.period_start) {
    await emitBudgetEvent(db, tenantId, {
      eventType: "budget_exceeded",
      periodStart: row.period_start,
      traceId: row.trace_id ?? undefined,
      data: { ...base, limit_micros: limit.toString(), spent_micros: settlement.spentMicros.toString(), description: settlement.warning },
    });
  }
  return { status: "settled", settlement, reservation: reservationOf(tenantId, input.reservationId, row) };
}

function storedSettlement(row: ReservationColumns): SettlementResult {
  return {
    spentMicros: row.spent_after_micros ?? 0n,
    remainingMicros: row.remaining_after_micros ?? 0n,
    warning: row.warning ?? "",
    thresholdCrossed: row.threshold_crossed ?? false,
    exceeded: row.exceeded ?? false,
  };
}

export type ReleaseOutcome =
  | { status: "released"; releasedMicros: bigint; reservation: ReservationRow }
  /** Already settled, released or expired: nothing returned to the budget. */
  | { status: "closed"; releasedMicros: 0n; reservation: ReservationRow }
  | { status: "not_found" };

/** What budget_release (and budget_release_batch, per item) answers. */
export type ReleaseRow = ReservationColumns & { outcome: "released" | "closed" | "not_found" };

const releaseCall = storedFunction<ReleaseRow>("budget_release", ["text", "text", "text", "timestamptz"]);

/** Returns an open reservation's hold to the budget without spend (at most once), in one statement. */
export async function releaseBudget(db: Executor, tenantId: string, reservationId: string, reason: string, now: Date): Promise<ReleaseOutcome> {
  const row = await releaseCall(db, [tenantId, reservationId, releaseReason(reason), now.toISOString()]);
  if (!row) throw new Error("budget_release returned no row");
  return releaseOutcome(tenantId, reservationId, row);
}

/** The reason recorded when the caller gives none. */
export function releaseReason(reason: string): string {
  return reason || "released";
}

export function releaseOutcome(tenantId: string, reservationId: string, row: ReleaseRow): ReleaseOutcome {
  if (row.outcome === "not_found") return { status: "not_found" };
  const reservation = reservationOf(tenantId, reservationId, row);
  if (row.outcome === "closed") return { status: "closed", releasedMicros: 0n, reservation };
  return { status: "released", releasedMicros: row.amount_micros, reservation };
}

const releaseExpiredCall = storedFunction<{ released_count: number; released_micros: bigint }>("budget_release_expired", ["text", "timestamptz"]);

/**
 * Returns the holds of a tenant's reservations that expired unsettled, in one statement under the
 * budget row lock (the reconciler's unit of work; Reserve does the same under its own lock).
 */
export async function releaseExpiredReservations(db: Executor, tenantId: string, now: Date): Promise<{ count: number; releasedMicros: bigint }> {
  const row = await releaseExpiredCall(db, [tenantId, now.toISOString()]);
  if (!row) throw new Error("budget_release_expired returned no row");
  return { count: row.released_count, releasedMicros: row.released_micros };
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
