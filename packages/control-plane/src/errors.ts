/** Why a Control Plane call failed, as far as the caller needs to decide what to do next. */
export type ControlPlaneErrorCode =
  | "network_error"
  | "timeout"
  | "aborted"
  | "invalid_response"
  | (string & {});

export interface ControlPlaneErrorInit {
  status: number;
  code: ControlPlaneErrorCode;
  message: string;
  retryable: boolean;
  operation: string;
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * A failed call to the Control Plane backend. `status` is the HTTP status, or 0 when no response
 * arrived (network error, timeout, abort). `retryable` is true exactly when sending the same
 * request again may succeed: network errors, timeouts, 429 and 5xx. Creates carry an idempotency
 * key, so retrying one with the same key can never create a second resource.
 */
export class ControlPlaneError extends Error {
  override readonly name = "ControlPlaneError";
  readonly status: number;
  readonly code: ControlPlaneErrorCode;
  readonly retryable: boolean;
  /** The contract operation, e.g. `create task`, for logs and trace attributes. */
  readonly operation: string;
  /** From a `Retry-After` header on 429/503, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(init: ControlPlaneErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.retryable = init.retryable;
    this.operation = init.operation;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** 429 and 5xx are worth another attempt; every other status will fail the same way again. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** `Retry-After` as delta-seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
