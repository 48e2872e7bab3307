/**
 * Releases, settlements and reservations for many executions of many tenants in ONE call
 * (`budget_batch`, migrations 20261127000000 and 20261127010000): one round trip, one autocommit
 * statement, one commit for the whole batch.
 *
 * Each item gets the outcome the single-item functions of store/budgets.ts would give it if the
 * batch's items ran one by one: releases first, then settlements, then reservations, each kind in
 * batch order (the batch functions prove that for the tenants they apply as a set and run the
 * others one by one). The one thing a batch cannot do is append an audit event (that needs a
 * transaction around the change and the append) or create a tenant's first budget row; the
 * database then answers `deferred` for the item and for that tenant's later items of the kind,
 * having written nothing for them, and they are finished here, one by one per tenant in that
 * order, through the single path, which commits each event with its change.
 *
 * The outer promise rejects only when the batch call itself fails (then nothing of it was
 * written); each item's own promise carries its outcome or its own error.
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

export type BudgetOperation =
  | { kind: "release"; tenantId: string; reservationId: string; reason: string; now: Date }
  | { kind: "settle"; tenantId: string; input: SettleInput }
  | { kind: "reserve"; tenantId: string; input: ReserveInput };

export type BudgetOperationOutcome =
  | { kind: "release"; outcome: ReleaseOutcome }
  | { kind: "settle"; outcome: SettleOutcome }
  | { kind: "reserve"; outcome: ReserveOutcome };

type Kind = BudgetOperation["kind"];
type OperationOf<K extends Kind> = Extract<BudgetOperation, { kind: K }>;

/** One answer of budget_batch: the item's kind and 1-based position among its kind, then the single function's answer. */
type BatchRow = { item: number } & (({ kind: "release" } & ReleaseRow) | ({ kind: "settle" } & SettleRow) | ({ kind: "reserve" } & ReserveRow));
type AnswersByKind = { release: ReleaseRow[]; settle: SettleRow[]; reserve: ReserveRow[] };

const batchCall = storedSetFunction<BatchRow>("budget_batch", [
  "text[]", "text[]", "text[]", "timestamptz[]", // releases: tenant, reservation, reason, now
  "text[]", "text[]", "int8[]", "timestamptz[]", // settlements: tenant, reservation, actual, now
  "text[]", "text[]", "text[]", "int8[]", "text[]", "timestamptz[]", "timestamptz[]", // reservations: tenant, execution, trace, amount, reservation, now, expires
  "int8[]", "boolean[]", "text[]", "float8[]", // the default budget
]);

/** The order budget_batch runs the kinds in. */
const KINDS = ["release", "settle", "reserve"] as const;

/** One operation alone, through the single path of store/budgets.ts. */
export async function applyBudgetOperation(db: Db, op: BudgetOperation): Promise<BudgetOperationOutcome> {
  switch (op.kind) {
    case "release":
      return { kind: "release", outcome: await releaseBudget(db, op.tenantId, op.reservationId, op.reason, op.now) };
    case "settle":
      return { kind: "settle", outcome: await settleBudget(db, op.tenantId, op.input) };
    case "reserve":
      return { kind: "reserve", outcome: await reserveBudget(db, op.tenantId, op.input) };
  }
}

/** Operations as one batch call; one promise per operation, in the given order. */
export async function applyBudgetBatch(db: Db, operations: readonly BudgetOperation[]): Promise<Promise<BudgetOperationOutcome>[]> {
  const indexed = operations.map((op, index) => ({ op, index }));
  const of = <K extends Kind>(kind: K) => indexed.filter((e): e is { op: OperationOf<K>; index: number } => e.op.kind === kind);
  const releases = of("release");
  const settles = of("settle");
  const reserves = of("reserve");
  const plans = reserves.map(({ op }) => planReservation(op.input));
  const rows = await batchCall(db, [
    releases.map(({ op }) => op.tenantId),
    releases.map(({ op }) => op.reservationId),
    releases.map(({ op }) => releaseReason(op.reason)),
    releases.map(({ op }) => op.now.toISOString()),
    settles.map(({ op }) => op.tenantId),
    settles.map(({ op }) => op.input.reservationId),
    settles.map(({ op }) => op.input.actualMicros.toString()),
    settles.map(({ op }) => op.input.now.toISOString()),
    reserves.map(({ op }) => op.tenantId),
    reserves.map(({ op }) => op.input.executionId),
    plans.map((p) => p.traceId),
    reserves.map(({ op }) => op.input.amountMicros.toString()),
    plans.map((p) => p.reservationId),
    reserves.map(({ op }) => op.input.now.toISOString()),
    plans.map((p) => p.expiresAt.toISOString()),
    reserves.map(({ op }) => op.input.defaults.limitMicros.toString()),
    reserves.map(({ op }) => op.input.defaults.hardLimit),
    reserves.map(({ op }) => op.input.defaults.period),
    reserves.map(({ op }) => String(op.input.defaults.alertThreshold)),
  ]);
  const answers = rowsByItem(rows, { release: releases.length, settle: settles.length, reserve: reserves.length });

  // Deferred items run alone, one by one per tenant, in the order the batch runs them.
  const chains = new Map<string, Promise<unknown>>();
  const outcomes = new Array<Promise<BudgetOperationOutcome>>(operations.length);
  const finish = ({ op, index }: { op: BudgetOperation; index: number }, row: { outcome: string }, decided: () => Promise<BudgetOperationOutcome>) => {
    if (row.outcome !== "deferred") {
      outcomes[index] = decided();
      return;
    }
    const alone = (chains.get(op.tenantId) ?? Promise.resolve()).catch(() => undefined).then(() => applyBudgetOperation(db, op));
    chains.set(op.tenantId, alone);
    outcomes[index] = alone;
  };
  releases.forEach((e, i) => {
    const row = answers.release[i]!;
    finish(e, row, async () => ({ kind: "release", outcome: releaseOutcome(e.op.tenantId, e.op.reservationId, row) }));
  });
  settles.forEach((e, i) => {
    const row = answers.settle[i]!;
    finish(e, row, async () => ({ kind: "settle", outcome: await settleOutcome(db, e.op.tenantId, e.op.input, row) }));
  });
  reserves.forEach((e, i) => {
    const row = answers.reserve[i]!;
    finish(e, row, async () => ({ kind: "reserve", outcome: await reserveOutcome(db, e.op.tenantId, e.op.input, plans[i]!, row) }));
  });
  return outcomes;
}

/** The rows of each kind in item order; budget_batch answers every item exactly once. */
function rowsByItem(rows: readonly BatchRow[], counts: Record<Kind, number>): AnswersByKind {
  const answers: AnswersByKind = { release: [], settle: [], reserve: [] };
  const place = <Row>(list: Row[], kind: Kind, item: number, row: Row) => {
    if (!(item >= 1 && item <= counts[kind]) || list[item - 1]) throw new Error(`budget batch answered ${kind} item ${item} twice or out of range`);
    list[item - 1] = row;
  };
  for (const row of rows) {
    if (row.kind === "release") place(answers.release, row.kind, row.item, row);
    else if (row.kind === "settle") place(answers.settle, row.kind, row.item, row);
    else place(answers.reserve, row.kind, row.item, row);
  }
  for (const kind of KINDS) {
    if (answers[kind].filter(Boolean).length !== counts[kind]) throw new Error(`budget batch left ${kind} items unanswered`);
  }
  return answers;
}
