import type { Kysely } from "kysely";
import { MicroBatcher, type MicroBatcherCounts, type MicroBatcherOptions } from "./micro-batcher.js";
import { releaseBudgets, reserveBudgets, settleBudgets, type ReleaseItem, type ReserveItem, type SettleItem } from "./store/budget-batches.js";
import {
  releaseBudget,
  reserveBudget,
  settleBudget,
  type ReleaseOutcome,
  type ReserveInput,
  type ReserveOutcome,
  type SettleInput,
  type SettleOutcome,
} from "./store/budgets.js";
import type { GovernanceDatabase } from "./store/schema.js";

export interface BudgetBatcherOptions extends MicroBatcherOptions {
  /** Told when a batch call fails (its items then run alone); a pino logger fits. */
  logger?: { warn(fields: { err: unknown; size: number }, message: string): void };
}

/**
 * Reserve, Settle and Release as the RPC handlers (and Preflight without a transaction of its
 * own) run them: concurrent calls of one kind share one batch call (store/budget-batches.ts), so
 * at 2,000 reservations/s the database runs a few statements and one commit per batch instead of
 * per call. Every caller still gets exactly the outcome its call would have had alone, in some
 * serial order (the guarantees of store/budgets.ts hold item by item). A caller with its own
 * Transaction calls store/budgets.ts directly instead: its statements belong in its transaction.
 * One per database handle: the more callers share it, the more each batch carries.
 */
export class BudgetBatcher {
  private readonly reserves: MicroBatcher<ReserveItem, ReserveOutcome>;
  private readonly settles: MicroBatcher<SettleItem, SettleOutcome>;
  private readonly releases: MicroBatcher<ReleaseItem, ReleaseOutcome>;

  constructor(db: Kysely<GovernanceDatabase>, options: BudgetBatcherOptions = {}) {
    const failed = (what: string) => (err: unknown, size: number) =>
      options.logger?.warn({ err, size }, `budget ${what} batch failed; running its items one by one`);
    this.reserves = new MicroBatcher((items) => reserveBudgets(db, items), (item) => reserveBudget(db, item.tenantId, item.input), options, failed("reserve"));
    this.settles = new MicroBatcher((items) => settleBudgets(db, items), (item) => settleBudget(db, item.tenantId, item.input), options, failed("settle"));
    this.releases = new MicroBatcher(
      (items) => releaseBudgets(db, items),
      (item) => releaseBudget(db, item.tenantId, item.reservationId, item.reason, item.now),
      options,
      failed("release"),
    );
  }

  /** What each kind has sent so far (batch sizes, lone calls, failed batches). */
  counts(): Record<"reserve" | "settle" | "release", Readonly<MicroBatcherCounts>> {
    return { reserve: this.reserves.counts, settle: this.settles.counts, release: this.releases.counts };
  }

  /** store/budgets.ts reserveBudget, batched. */
  reserve(tenantId: string, input: ReserveInput): Promise<ReserveOutcome> {
    return this.reserves.submit({ tenantId, input });
  }

  /** store/budgets.ts settleBudget, batched. */
  settle(tenantId: string, input: SettleInput): Promise<SettleOutcome> {
    return this.settles.submit({ tenantId, input });
  }

  /** store/budgets.ts releaseBudget, batched. */
  release(tenantId: string, reservationId: string, reason: string, now: Date): Promise<ReleaseOutcome> {
    return this.releases.submit({ tenantId, reservationId, reason, now });
  }
}
