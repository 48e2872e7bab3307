import { SpanStatusCode, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import { ConnectError } from "@connectrpc/connect";
import { ATTR_ERROR_TYPE } from "@opentelemetry/semantic-conventions";
import { codeName } from "./rpc.js";

/**
 * Marks a span failed. ConnectErrors are expected outcomes with a code, so the code is the
 * error type and no stack is attached; anything else is a bug, so the exception is recorded.
 */
export function markSpanFailed(span: Span, error: unknown): void {
  if (error instanceof ConnectError) {
    span.setAttribute(ATTR_ERROR_TYPE, codeName(error.code));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.rawMessage });
    return;
  }
  const err = error instanceof Error ? error : new Error(String(error));
  span.setAttribute(ATTR_ERROR_TYPE, err.constructor.name);
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

/** Runs `fn` in a new active span that ends when `fn` settles and records a failure if it throws. */
export function withSpan<T>(
  tracer: Tracer,
  name: string,
  attrs: Attributes,
  fn: (span: Span) => T | Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes: attrs }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      markSpanFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}
