/**
 * Bounds of IngestSpans beyond the proto rules (span.proto already caps counts and key lengths).
 * Sizes are counted in characters of attribute keys and values, event names and attributes, the
 * span name and the status message — what the service stores — not in protobuf bytes, so the
 * check costs a walk we do anyway instead of a second serialization. docs/TRACING.md "Limits".
 */
export const INGEST_LIMITS = {
  /** One span; a larger span is refused with the batch (InvalidArgument, field spans[i]). */
  spanChars: 256 * 1024,
  /** All spans of one request; a larger batch is refused (field spans). */
  batchChars: 8 * 1024 * 1024,
  /**
   * One string attribute value. Longer values are kept cut to this length plus a marker instead
   * of refusing the span: OpenTelemetry SDKs treat their attribute length limit the same way, and
   * one oversized tool result should not cost the rest of the execution's trace.
   */
  valueChars: 64 * 1024,
} as const;

export const TRUNCATION_MARKER = "…[truncated]";

/**
 * `value` cut to the value limit with the marker appended; unchanged when it fits. Never cuts a
 * surrogate pair in half: PostgreSQL refuses a lone surrogate in jsonb.
 */
export function truncateValue(value: string): string {
  if (value.length <= INGEST_LIMITS.valueChars) return value;
  let end = INGEST_LIMITS.valueChars;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return value.slice(0, end) + TRUNCATION_MARKER;
}
