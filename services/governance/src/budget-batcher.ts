import type { Kysely } from "kysely";
import { MicroBatcher, type MicroBatcherCounts, type MicroBatcherOptions } from "./micro-batcher.js";
import { applyBudgetBatch, applyBudgetOperation, type BudgetOperation, type BudgetOperationOutcome } from "./store/budget-batches.js";
import type { ReleaseOutcome, ReserveInput, ReserveOutcome, SettleInput, SettleOutcome } from "./store/budgets.js";
import type { GovernanceDatabase } from "./store/schema.js";

export interface BudgetBatcherOptions extends MicroBatcherOptions {
  /** Told when a batch call fails (its items then run alone); a pino logger fits. */
  logger?: { warn(fields: { err: unknown; size: number }, message: string): void };
}

/**
 * Reserve, Settle and Release as the RPC handlers (and Preflight without a transaction of its
 * own) run them: the calls that arrive while a batch is in flight go together in the next one,
 * ONE database call for all of them, whatever their kind and tenant (store/budget-batches.ts),
 * so under load the database runs a few statements and one commit per batch instead of per call.
 * Every caller still gets exactly the outcome its call would have had alone, in some serial order
 * (the guarantees of store/budgets.ts hold item by item). A caller with its own Transaction calls
 * store/budgets.ts directly instead: its statements belong in its transaction. One per database
 * handle: the more callers share it, the more each batch carries.
 */
export class BudgetBatcher {
  private readonly operations: MicroBatcher<BudgetOperation, BudgetOperationOutcome>;

  constructor(db: Kysely<GovernanceDatabase>, options: BudgetBatcherOptions = {}) {
    this.operations = new MicroBatcher(
      (operations) => applyBudgetBatch(db, operations),
      (operation) => applyBudgetOperation(db, operation),
      options,
      (err, size) => options.logger?.warn({ err, size }, "budget batch failed; running its operations one by one"),
    );
  }

  /** What has been sent so far (batch sizes, lone calls, failed batches). */
  counts(): Readonly<MicroBatcherCounts> {
    return this.operations.counts;
  }

  /** store/budgets.ts reserveBudget, batched. */
  async reserve(tenantId: string, input: ReserveInput): Promise<ReserveOutcome> {
    const answer = await this.operations.submit({ kind: "reserve", tenantId, input });
    if (answer.kind !== "reserve") throw new Error(`a reservation was answered as a ${answer.kind}`);
    return answer.outcome;
  }

  /** store/budgets.ts settleBudget, batched. */
  async settle(tenantId: string, input: SettleInput): Promise<SettleOutcome> {
    const answer = await this.operations.submit({ kind: "settle", tenantId, input });
    if (answer.kind !== "settle") throw new Error(`a settlement was answered as a ${answer.kind}`);
    return answer.outcome;
  }

  /** store/budgets.ts releaseBudget, batched. */
  async release(tenantId: string, reservationId: string, reason: string, now: Date): Promise<ReleaseOutcome> {
    const answer = await this.operations.submit({ kind: "release", tenantId, reservationId, reason, now });
    if (answer.kind !== "release") throw new Error(`a release was answered as a ${answer.kind}`);
    return answer.outcome;
  }
}
