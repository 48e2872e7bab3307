import { invalidField } from "@clasper/core";

/**
 * The keyset position after the last row of a page: (started_at, trace_id), the listing's sort
 * key. started_at travels as the database's own text with microseconds, because a JavaScript
 * Date keeps only milliseconds and a truncated key would skip rows started in the same
 * millisecond. Opaque to clients: base64url of a small JSON array.
 */
export interface TraceCursor {
  /** RFC 3339 UTC with up to 6 fractional digits, e.g. 2026-01-02T03:04:05.123456Z. */
  startedAt: string;
  traceId: string;
}

const STARTED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const TRACE_ID = /^[0-9a-f]{32}$/;

export function encodeCursor(cursor: TraceCursor): string {
  return Buffer.from(JSON.stringify([cursor.startedAt, cursor.traceId])).toString("base64url");
}

/** Parses a client's cursor; anything we did not issue is InvalidArgument naming `cursor`. */
export function decodeCursor(raw: string, field = "cursor"): TraceCursor {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw new Error("not base64url");
    parsed = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
  } catch {
    throw invalidField(field, "malformed cursor; pass next_cursor from a previous page unchanged");
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== "string" ||
    typeof parsed[1] !== "string" ||
    !STARTED_AT.test(parsed[0]) ||
    Number.isNaN(Date.parse(parsed[0])) ||
    !TRACE_ID.test(parsed[1])
  ) {
    throw invalidField(field, "malformed cursor; pass next_cursor from a previous page unchanged");
  }
  return { startedAt: parsed[0], traceId: parsed[1] };
}
