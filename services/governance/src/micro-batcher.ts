/** What a batcher has sent so far. */
export interface MicroBatcherCounts {
  /** Batch calls (two items or more), and the items they carried. */
  batches: number;
  batchedItems: number;
  /** Items that went alone (nothing else was waiting). */
  alone: number;
  /** Batch calls that failed, their items then sent alone. */
  failedBatches: number;
}

export interface MicroBatcherOptions {
  /** Most items one batch carries (default 256). */
  maxBatchSize?: number;
  /**
   * Batches in flight at once, each on its own connection (default 1: what arrives meanwhile
   * waits for the next batch, so under load batches grow and each item costs less).
   */
  maxInFlight?: number;
}

/**
 * Sends what callers submit in batches: the items that arrive while `maxInFlight` batches are in
 * flight wait and go together in the next one, so under load many callers share one database
 * call, while an idle batcher sends a lone item at once (after the current I/O callbacks, so
 * items submitted in the same event-loop turn still travel together).
 *
 * `runBatch` resolves to one promise per item, in order: the item's own outcome or its own
 * error. When `runBatch` itself fails, each item of that batch runs alone through `runOne`, so
 * every caller gets its own answer or its own error, never a stranger's failure.
 */
export class MicroBatcher<Item, Outcome> {
  private readonly maxBatchSize: number;
  private readonly maxInFlight: number;
  private queue: { item: Item; resolve: (outcome: Outcome) => void; reject: (err: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;
  readonly counts: MicroBatcherCounts = { batches: 0, batchedItems: 0, alone: 0, failedBatches: 0 };

  constructor(
    private readonly runBatch: (items: readonly Item[]) => Promise<Promise<Outcome>[]>,
    private readonly runOne: (item: Item) => Promise<Outcome>,
    options: MicroBatcherOptions = {},
    private readonly onBatchFailure: (err: unknown, size: number) => void = () => {},
  ) {
    this.maxBatchSize = options.maxBatchSize ?? 256;
    this.maxInFlight = options.maxInFlight ?? 1;
    if (!(this.maxBatchSize >= 1 && this.maxInFlight >= 1)) throw new Error("maxBatchSize and maxInFlight must be at least 1");
  }

  submit(item: Item): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
        this.inFlight++;
        void this.send(this.queue.splice(0, this.maxBatchSize)).finally(() => {
          this.inFlight--;
          this.schedule();
        });
      }
    });
  }

  private async send(batch: typeof this.queue): Promise<void> {
    const items = batch.map((entry) => entry.item);
    let outcomes: Promise<Outcome>[];
    if (items.length === 1) {
      // A lone item costs less on its own: the batch machinery pays off from two items on.
      this.counts.alone++;
      outcomes = [this.runOne(items[0]!)];
      await Promise.allSettled(outcomes);
    } else {
      this.counts.batches++;
      this.counts.batchedItems += items.length;
      try {
        outcomes = await this.runBatch(items);
        if (outcomes.length !== batch.length) throw new Error(`batch of ${batch.length} answered ${outcomes.length} items`);
      } catch (err) {
        this.counts.failedBatches++;
        this.onBatchFailure(err, batch.length);
        outcomes = items.map((item) => this.runOne(item));
        // The slot stays taken until the lone calls are done: a failing database is not flooded.
        await Promise.allSettled(outcomes);
      }
    }
    batch.forEach((entry, i) => outcomes[i]!.then(entry.resolve, entry.reject));
  }
}
