import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, type ErrorInfo } from "@clasper/proto";

/**
 * Every expected failure is a ConnectError carrying an ErrorInfo detail, so the gateway can
 * answer with the documented JSON body and status without knowing the service that failed.
 */
export function clasperError(
  code: Code,
  message: string,
  info: { reason: string; field?: string; httpStatus?: number },
): ConnectError {
  const detail = create(ErrorInfoSchema, {
    code: info.reason,
    field: info.field ?? "",
    httpStatus: info.httpStatus ?? 0,
  });
  return new ConnectError(message, code, undefined, [{ desc: ErrorInfoSchema, value: detail }]);
}

/** Bad input on one field: 400 with the field named. */
export function invalidField(field: string, reason: string): ConnectError {
  return clasperError(Code.InvalidArgument, `${field}: ${reason}`, { reason: "invalid_field", field });
}

/** The thing does not exist for this tenant (also used for other tenants' ids: 404, never 403). */
export function notFound(what: string, field?: string): ConnectError {
  return clasperError(Code.NotFound, `${what} not found`, { reason: "not_found", ...(field ? { field } : {}) });
}

export function alreadyExists(message: string, field?: string): ConnectError {
  return clasperError(Code.AlreadyExists, message, { reason: "already_exists", ...(field ? { field } : {}) });
}

export function permissionDenied(message: string, reason = "permission_denied"): ConnectError {
  return clasperError(Code.PermissionDenied, message, { reason });
}

export function unauthenticated(message: string, reason = "unauthenticated"): ConnectError {
  return clasperError(Code.Unauthenticated, message, { reason });
}

export function failedPrecondition(message: string, reason: string, httpStatus?: number): ConnectError {
  return clasperError(Code.FailedPrecondition, message, { reason, ...(httpStatus ? { httpStatus } : {}) });
}

/** Reads the ErrorInfo detail of a ConnectError, if it carries one. */
export function errorInfoOf(err: ConnectError): ErrorInfo | undefined {
  return err.findDetails(ErrorInfoSchema)[0];
}
