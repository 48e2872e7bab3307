import { Code, ConnectError } from "@connectrpc/connect";
import { errorInfoOf } from "@clasper/core";

/** The JSON error body every failing REST call answers with. */
export interface RestErrorBody {
  error: { code: string; message: string; field?: string };
}

const STATUS_BY_CODE: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 409,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

function snakeCodeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

export function restError(status: number, code: string, message: string, field?: string): { status: number; body: RestErrorBody } {
  return { status, body: { error: { code, message, ...(field ? { field } : {}) } } };
}

/**
 * Maps a failed RPC to the REST answer. Expected failures carry ErrorInfo (reason, field, and an
 * explicit status when the Connect code cannot express it, e.g. 402); anything else is a 500 whose
 * message hides internals.
 */
export function fromConnectError(err: unknown, endpoint: string): { status: number; body: RestErrorBody } {
  const connectErr = ConnectError.from(err);
  if (connectErr.code === Code.Unimplemented) {
    return restError(501, "not_implemented", `${endpoint} is not available yet`);
  }
  const info = errorInfoOf(connectErr);
  const status = info?.httpStatus || STATUS_BY_CODE[connectErr.code] || 500;
  if (status >= 500 && !info) {
    return restError(status, snakeCodeName(connectErr.code), status === 503 ? "service unavailable" : "internal error");
  }
  return restError(status, info?.code || snakeCodeName(connectErr.code), connectErr.rawMessage, info?.field || undefined);
}
