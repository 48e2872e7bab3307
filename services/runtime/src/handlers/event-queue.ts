/** A single-consumer queue a producer task pushes into and a stream handler drains. */
export class EventQueue<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  /** Yields items until `done` settles and everything pushed before has been yielded. */
  async *drain(done: Promise<unknown>): AsyncGenerator<T> {
    let finished = false;
    const finish = () => {
      finished = true;
      this.wake?.();
    };
    done.then(finish, finish);
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (finished) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.items.length > 0 || finished) resolve();
      });
      this.wake = undefined;
    }
  }
}
