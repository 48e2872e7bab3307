import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { invalidField } from "@clasper/core";
import type { AttributeValue, Span, SpanAttribute } from "@clasper/proto";
import { ATTR } from "@clasper/telemetry";
import { INGEST_LIMITS } from "./limits.js";

/** A stored attribute value: what a span attribute becomes (store/span-payload.ts). */
export type StoredValue = string | number | boolean | null | StoredValue[];

/**
 * Attribute key → value. Keys are data sent by any process, so nothing is inherited:
 * `__proto__`, `constructor` and `prototype` are ordinary keys, stored verbatim, and can neither
 * reach Object.prototype nor shadow a method.
 */
export type AttributeMap = Record<string, StoredValue>;

/*
 * Maps are instances of a constructor whose prototype is an empty object without a prototype, not
 * `Object.create(null)`: V8 keeps such an object in dictionary mode from the start, and ingest
 * fills, iterates and rewrites every span's map (normalise, redact, encode) several times faster
 * in its fast mode. The lookup of any key not set still finds nothing.
 */
const NO_PROPERTIES: object = Object.freeze(Object.create(null) as object);
function AttributeRecord(): void {}
AttributeRecord.prototype = NO_PROPERTIES;

export function emptyAttributeMap(): AttributeMap {
  return new (AttributeRecord as unknown as new () => AttributeMap)();
}

export interface NormalizedEvent {
  name: string;
  /** µs since 1970 UTC; the span's start when the event has no time. */
  timeMicros: number;
  attributes: AttributeMap;
}

/** A span as ingest handles it: plain data, times exact to the microsecond. */
export interface NormalizedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: number;
  /** gen_ai.operation.name (or clasper.governance_decision), when a string. */
  operation: string | null;
  /** µs since 1970 UTC. */
  startMicros: number;
  endMicros: number;
  statusCode: number;
  statusMessage: string | null;
  attributes: AttributeMap;
  events: NormalizedEvent[];
  serviceName: string | null;
  /** Characters of keys and values (INGEST_LIMITS). */
  size: number;
}

// Timestamps PostgreSQL and Date can both hold: 0001-01-01 .. 9999-12-31.
const MIN_SECONDS = -62135596800n;
const MAX_SECONDS = 253402300799n;
const NUMBER_SIZE = 8;

/** PostgreSQL text cannot hold U+0000; it becomes U+FFFD rather than failing the batch. */
function text(value: string): string {
  return value.includes("\0") ? value.replaceAll("\0", "\uFFFD") : value;
}

/** µs since 1970 UTC. */
export function timestampMicros(ts: Timestamp): number {
  return Number(ts.seconds) * 1_000_000 + Math.floor(ts.nanos / 1000);
}

/** µs of a timestamp PostgreSQL and Date can both hold; undefined beyond that range. */
function storableMicros(ts: Timestamp): number | undefined {
  return ts.seconds < MIN_SECONDS || ts.seconds > MAX_SECONDS ? undefined : timestampMicros(ts);
}

function outOfRange(field: string): never {
  throw invalidField(field, "is out of range");
}

/** ISO-8601 with microseconds (a Date would round to milliseconds). */
export function isoMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const sub = us - ms * 1000;
  return `${new Date(ms).toISOString().slice(0, -1)}${String(sub).padStart(3, "0")}Z`;
}

class Sizer {
  total = 0;
  add(n: number): void {
    this.total += n;
  }
}

function storedValue(value: AttributeValue | undefined, size: Sizer): StoredValue {
  const v = value?.value;
  switch (v?.case) {
    case "stringValue":
      size.add(v.value.length);
      return text(v.value);
    case "boolValue":
      size.add(NUMBER_SIZE);
      return v.value;
    case "intValue":
      size.add(NUMBER_SIZE);
      // int64 beyond 2^53 would lose digits as a number; it is kept exact as a string.
      return v.value >= BigInt(Number.MIN_SAFE_INTEGER) && v.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.value) : v.value.toString();
    case "doubleValue":
      size.add(NUMBER_SIZE);
      // Stored values are JSON values (rows written before payload held jsonb): no NaN or Infinity.
      return Number.isFinite(v.value) ? v.value : String(v.value);
    case "arrayValue":
      return v.value.values.map((item) => storedValue(item, size));
    default:
      return null;
  }
}

/** Later duplicates of a key win, as in the OpenTelemetry SDKs. */
export function attributeMap(attributes: readonly SpanAttribute[], size = new Sizer()): AttributeMap {
  const map = emptyAttributeMap();
  for (const attribute of attributes) {
    size.add(attribute.key.length);
    map[text(attribute.key)] = storedValue(attribute.value, size);
  }
  return map;
}

/** The span as plain data; throws InvalidArgument naming the field for times that cannot be stored. */
export function normalizeSpan(span: Span, index: number): NormalizedSpan {
  // Field names are built only for an error: this runs for every span of every batch.
  if (!span.startTime) throw invalidField(`spans[${index}].start_time`, "value is required");
  if (!span.endTime) throw invalidField(`spans[${index}].end_time`, "value is required");
  const startMicros = storableMicros(span.startTime) ?? outOfRange(`spans[${index}].start_time`);
  const endMicros = storableMicros(span.endTime) ?? outOfRange(`spans[${index}].end_time`);
  if (endMicros < startMicros) throw invalidField(`spans[${index}].end_time`, "must not be before start_time");

  const size = new Sizer();
  size.add(span.name.length + (span.status?.message.length ?? 0));
  const attributes = attributeMap(span.attributes, size);
  const events = span.events.map((event, j) => {
    size.add(event.name.length);
    return {
      name: text(event.name),
      timeMicros: event.time ? (storableMicros(event.time) ?? outOfRange(`spans[${index}].events[${j}].time`)) : startMicros,
      attributes: attributeMap(event.attributes, size),
    };
  });
  const operation = attributes[ATTR.operationName];
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId === "" ? null : span.parentSpanId,
    name: text(span.name),
    kind: span.kind,
    operation: typeof operation === "string" ? operation : null,
    startMicros,
    endMicros,
    statusCode: span.status?.code ?? 0,
    statusMessage: span.status?.message ? text(span.status.message) : null,
    attributes,
    events,
    serviceName: span.serviceName === "" ? null : text(span.serviceName),
    size: size.total,
  };
}

/**
 * Every span of a request, checked against INGEST_LIMITS; the first violation is thrown as
 * InvalidArgument naming the span (`spans[3]`) or the batch (`spans`).
 */
export function normalizeBatch(spans: readonly Span[]): NormalizedSpan[] {
  let total = 0;
  return spans.map((span, index) => {
    const normalized = normalizeSpan(span, index);
    if (normalized.size > INGEST_LIMITS.spanChars) {
      throw invalidField(`spans[${index}]`, `span is ${normalized.size} characters; the limit is ${INGEST_LIMITS.spanChars}`);
    }
    total += normalized.size;
    if (total > INGEST_LIMITS.batchChars) {
      throw invalidField("spans", `batch exceeds ${INGEST_LIMITS.batchChars} characters; send fewer spans per request`);
    }
    return normalized;
  });
}
