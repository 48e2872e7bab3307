import { setTimeout as sleep } from "node:timers/promises";
import type { IsolationLevel, Kysely, Transaction } from "kysely";

/** serialization_failure and deadlock_detected: the transaction may succeed if simply retried. */
const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set(["40001", "40P01"]);
const DEFAULT_RETRIES = 3;
const BASE_BACKOFF_MS = 10;

/**
 * True when `err` (or an error in its `cause` chain) is a PostgreSQL serialization failure or
 * deadlock. Both `pg` and PGlite put the SQLSTATE in `code`.
 */
export function isSerializationFailure(err: unknown): boolean {
  for (let current = err, depth = 0; current instanceof Object && depth < 8; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && RETRYABLE_SQLSTATES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export interface TransactionOptions {
  /** Extra attempts after a serialization failure (default 3). The last failure is rethrown. */
  retries?: number;
  isolationLevel?: IsolationLevel;
}

/**
 * Runs `fn` in a transaction, re-running the whole transaction when PostgreSQL aborts it with a
 * serialization failure or deadlock. `fn` must therefore be safe to repeat: no side effects
 * outside the database. Any other error propagates at once.
 */
export async function withTransaction<DB, T>(
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const retries = options.retries ?? DEFAULT_RETRIES;
  for (let attempt = 0; ; attempt++) {
    try {
      let builder = db.transaction();
      if (options.isolationLevel) builder = builder.setIsolationLevel(options.isolationLevel);
      return await builder.execute(fn);
    } catch (err) {
      if (attempt >= retries || !isSerializationFailure(err)) throw err;
      // Jittered exponential backoff so the conflicting transactions do not collide again in step.
      await sleep(BASE_BACKOFF_MS * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}
