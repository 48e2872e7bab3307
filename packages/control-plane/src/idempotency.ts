import { createHash } from "node:crypto";

/**
 * The idempotency key of the `callIndex`-th Control Plane call of `step` in trace `traceId`.
 * Deterministic, so a retry of the same call (after a timeout, a 5xx, a restart that replays the
 * step) carries the same key and the backend returns the resource it already created instead of
 * creating another. Hashing keeps the key short, of a fixed alphabet, and free of the trace id.
 */
export function idempotencyKey(traceId: string, step: number | string, callIndex: number | string): string {
  if (traceId === "") throw new TypeError("idempotencyKey needs a trace id");
  // JSON framing keeps ("a", "1:2", 3) and ("a:1", "2", 3) apart.
  const digest = createHash("sha256").update(JSON.stringify([traceId, String(step), String(callIndex)])).digest("hex");
  return `clasper-${digest.slice(0, 40)}`;
}
