import { setTimeout as sleep } from "node:timers/promises";
import { ControlPlaneError } from "./errors.js";

export interface RetryOptions {
  /** Total attempts including the first (default 3). */
  attempts?: number;
  /** First backoff; doubles per attempt, with full jitter (default 200 ms). */
  baseDelayMs?: number;
  /** Cap on one wait, `Retry-After` included (default 5 s). */
  maxDelayMs?: number;
  signal?: AbortSignal;
  onRetry?: (error: ControlPlaneError, attempt: number, delayMs: number) => void;
}

/**
 * Runs `operation` again while it fails with a retryable ControlPlaneError. The operation must
 * be the *same* request each time: for creates that means the same idempotency key, which is what
 * makes a retry after a timeout (when the first attempt may have committed) safe.
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const base = options.baseDelayMs ?? 200;
  const cap = options.maxDelayMs ?? 5_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      if (!(err instanceof ControlPlaneError) || !err.retryable || attempt >= attempts || options.signal?.aborted) throw err;
      const backoff = Math.random() * base * 2 ** (attempt - 1);
      const delayMs = Math.min(cap, Math.max(backoff, err.retryAfterMs ?? 0));
      options.onRetry?.(err, attempt, delayMs);
      await sleep(delayMs, undefined, options.signal ? { signal: options.signal } : undefined);
    }
  }
}
