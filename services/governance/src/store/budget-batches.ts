/**
 * Reserve, Settle and Release for many executions of many tenants in ONE call each (migration
 * 20261127000000): one round trip, one autocommit statement, one commit for the whole batch.
 *
 * Each item gets the outcome the single-item functions of store/budgets.ts would give it if the
 * items ran one by one in batch order (the batch functions prove that for the tenants they apply
 * as a set and run the others one by one). The one thing a batch cannot do is append an audit
 * event (that needs a transaction around the change and the append); the database then answers
 * `deferred` for the item whose event came due and for that tenant's later items, having written
 * nothing for them, and they are finished here, one by one per tenant in batch order, through
 * the single path, which commits each event with its change.
 *
 * The outer promise rejects only when the batch call itself fails (nothing of it was written);
 * each item's own promise carries its outcome or its own error.
 */
import type { Kysely } from "kysely";
import type { GovernanceDatabase } from "./schema.js";
import { storedSetFunction } from "./prepared-statement.js";
import {
  planReservation,
  releaseBudget,
  releaseOutcome,
  releaseReason,
  reserveBudget,
  reserveOutcome,
  settleBudget,
  settleOutcome,
  type ReleaseOutcome,
  type ReleaseRow,
  type ReserveInput,
  type ReserveOutcome,
  type ReserveRow,
  type SettleInput,
  type SettleOutcome,
  type SettleRow,
} from "./budgets.js";

type Db = Kysely<GovernanceDatabase>;

export interface ReserveItem {
  tenantId: string;
  input: ReserveInput;
}

export interface SettleItem {
  tenantId: string;
  input: SettleInput;
}

export interface ReleaseItem {
  tenantId: string;
  reservationId: string;
  reason: string;
  now: Date;
}

/** A batch function's row: the item's 1-based position, then what the single function answers. */
type Numbered<Row> = Row & { item: number };

const reserveBatchCall = storedSetFunction<Numbered<ReserveRow>>("budget_reserve_batch", [
  "text[]", "text[]", "text[]", "int8[]", "text[]", "timestamptz[]", "timestamptz[]", // tenant, execution, trace, amount, reservation, now, expires
  "int8[]", "boolean[]", "text[]", "float8[]", // the default budget
]);

export async function reserveBudgets(db: Db, items: readonly ReserveItem[]): Promise<Promise<ReserveOutcome>[]> {
  const plans = items.map(({ input }) => planReservation(input));
  const rows = await reserveBatchCall(db, [
    items.map((i) => i.tenantId),
    items.map((i) => i.input.executionId),
    plans.map((p) => p.traceId),
    items.map((i) => i.input.amountMicros.toString()),
    plans.map((p) => p.reservationId),
    items.map((i) => i.input.now.toISOString()),
    plans.map((p) => p.expiresAt.toISOString()),
    items.map((i) => i.input.defaults.limitMicros.toString()),
    items.map((i) => i.input.defaults.hardLimit),
    items.map((i) => i.input.defaults.period),
    items.map((i) => String(i.input.defaults.alertThreshold)),
  ]);
  return outcomes(
    items,
    rows,
    (index, row) => reserveOutcome(db, items[index]!.tenantId, items[index]!.input, plans[index]!, row),
    (item) => reserveBudget(db, item.tenantId, item.input),
  );
}

const settleBatchCall = storedSetFunction<Numbered<SettleRow>>("budget_settle_batch", ["text[]", "text[]", "int8[]", "timestamptz[]"]);

export async function settleBudgets(db: Db, items: readonly SettleItem[]): Promise<Promise<SettleOutcome>[]> {
  const rows = await settleBatchCall(db, [
    items.map((i) => i.tenantId),
    items.map((i) => i.input.reservationId),
    items.map((i) => i.input.actualMicros.toString()),
    items.map((i) => i.input.now.toISOString()),
  ]);
  return outcomes(
    items,
    rows,
    (index, row) => settleOutcome(db, items[index]!.tenantId, items[index]!.input, row),
    (item) => settleBudget(db, item.tenantId, item.input),
  );
}

const releaseBatchCall = storedSetFunction<Numbered<ReleaseRow>>("budget_release_batch", ["text[]", "text[]", "text[]", "timestamptz[]"]);

export async function releaseBudgets(db: Db, items: readonly ReleaseItem[]): Promise<Promise<ReleaseOutcome>[]> {
  const rows = await releaseBatchCall(db, [
    items.map((i) => i.tenantId),
    items.map((i) => i.reservationId),
    items.map((i) => releaseReason(i.reason)),
    items.map((i) => i.now.toISOString()),
  ]);
  return outcomes(
    items,
    rows,
    async (index, row) => releaseOutcome(items[index]!.tenantId, items[index]!.reservationId, row),
    (item) => releaseBudget(db, item.tenantId, item.reservationId, item.reason, item.now),
  );
}

/**
 * Each item's outcome: `decided` for the rows the batch decided; for deferred ones, `single`,
 * chained per tenant so that a tenant's deferred items run one after another in batch order
 * (each after the previous one finished, whether it succeeded or not).
 */
function outcomes<Item extends { tenantId: string }, Row extends { item: number; outcome: string }, Outcome>(
  items: readonly Item[],
  rows: readonly Row[],
  decided: (index: number, row: Row) => Promise<Outcome>,
  single: (item: Item) => Promise<Outcome>,
): Promise<Outcome>[] {
  const byItem = rowsByItem(rows, items.length);
  const chains = new Map<string, Promise<unknown>>();
  return items.map((item, index) => {
    const row = byItem[index]!;
    if (row.outcome !== "deferred") return decided(index, row);
    const previous = chains.get(item.tenantId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => single(item));
    chains.set(item.tenantId, next);
    return next;
  });
}

/** The rows in item order; a batch function answers every item exactly once. */
function rowsByItem<Row extends { item: number }>(rows: readonly Row[], count: number): Row[] {
  const byItem = new Array<Row | undefined>(count);
  for (const row of rows) {
    if (!(row.item >= 1 && row.item <= count) || byItem[row.item - 1]) throw new Error(`budget batch answered item ${row.item} of ${count} twice or out of range`);
    byItem[row.item - 1] = row;
  }
  if (rows.length !== count) throw new Error(`budget batch answered ${rows.length} of ${count} items`);
  return byItem as Row[];
}
