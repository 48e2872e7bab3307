import type { AttributeValue, Attributes, HrTime } from "@opentelemetry/api";
import type { ReadableSpan, TimedEvent } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SpanKind, SpanSchema, SpanStatusCode } from "@clasper/proto";
import { ATTR } from "./clasper-attributes.js";

/*
 * Why only types come from @clasper/proto: the exporter builds the message's init shape, which a
 * Connect client accepts as is, so this package needs no protobuf runtime; the compiler still
 * checks every field against the generated `clasper.trace.v1.Span`.
 */

/** A finished span as IngestSpans takes it (`clasper.trace.v1.Span`, init shape). */
export type IngestSpan = MessageInitShape<typeof SpanSchema>;
type IngestAttribute = NonNullable<IngestSpan["attributes"]>[number];
type IngestValue = NonNullable<IngestAttribute["value"]>;
type IngestTimestamp = NonNullable<IngestSpan["startTime"]>;

/**
 * The bounds span.proto enforces. The trace service validates the whole request, so one span
 * over a bound would get its batch rejected again and again; the span is trimmed to fit instead.
 */
const LIMITS = {
  attributes: 256,
  events: 256,
  eventAttributes: 128,
  arrayValues: 1000,
  keyChars: 256,
  spanNameChars: 512,
  eventNameChars: 256,
  statusMessageChars: 8192,
  serviceNameChars: 128,
} as const;

/** Cuts to `max` code points (protovalidate counts characters, not UTF-16 units). */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return Array.from(text).slice(0, max).join("");
}

/** HrTime is [seconds, nanoseconds], exact to the nanosecond, as is Timestamp. */
function timestamp(time: HrTime): IngestTimestamp {
  return { seconds: BigInt(time[0]), nanos: time[1] };
}

/**
 * JavaScript has one number type; like the OTLP exporter, whole numbers travel as int64 and the
 * rest (fractions, NaN, infinities, integers beyond 2^53) as double.
 */
function scalarValue(value: string | number | boolean): IngestValue {
  if (typeof value === "string") return { value: { case: "stringValue", value } };
  if (typeof value === "boolean") return { value: { case: "boolValue", value } };
  if (Number.isSafeInteger(value)) return { value: { case: "intValue", value: BigInt(value) } };
  return { value: { case: "doubleValue", value } };
}

/** Array entries may be null or undefined; they stay as empty values so positions are kept. */
function attributeValue(value: AttributeValue): IngestValue {
  if (!Array.isArray(value)) return scalarValue(value as string | number | boolean);
  const values = (value as ReadonlyArray<string | number | boolean | null | undefined>)
    .slice(0, LIMITS.arrayValues)
    .map((item) => (item === null || item === undefined ? {} : scalarValue(item)));
  return { value: { case: "arrayValue", value: { values } } };
}

function attributes(source: Attributes, max: number): IngestAttribute[] {
  const result: IngestAttribute[] = [];
  for (const [key, value] of Object.entries(source)) {
    if (result.length === max) break;
    // A shortened key would name a different attribute, so an oversized one is left out.
    if (value === undefined || key === "" || key.length > LIMITS.keyChars) continue;
    result.push({ key, value: attributeValue(value) });
  }
  return result;
}

function event(source: TimedEvent): NonNullable<IngestSpan["events"]>[number] {
  return {
    name: truncate(source.name, LIMITS.eventNameChars) || "unnamed",
    time: timestamp(source.time),
    attributes: attributes(source.attributes ?? {}, LIMITS.eventAttributes),
  };
}

/**
 * The span as the trace service stores it. Content attributes are kept: the trace service
 * redacts them before storing (only the OTLP path drops them). Links have no field and are left out.
 */
export function toIngestSpan(span: ReadableSpan): IngestSpan {
  const { traceId, spanId } = span.spanContext();
  const fallbackName = String(span.attributes[ATTR.operationName] ?? "unnamed");
  return {
    traceId,
    spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? "",
    name: truncate(span.name, LIMITS.spanNameChars) || fallbackName,
    // The API's kinds start at INTERNAL = 0; the proto reserves 0 for UNSPECIFIED.
    kind: (span.kind + 1) as SpanKind,
    startTime: timestamp(span.startTime),
    endTime: timestamp(span.endTime),
    // UNSET/OK/ERROR are 0/1/2 in both.
    status: {
      code: span.status.code as number as SpanStatusCode,
      message: truncate(span.status.message ?? "", LIMITS.statusMessageChars),
    },
    attributes: attributes(span.attributes, LIMITS.attributes),
    events: span.events.slice(0, LIMITS.events).map(event),
    serviceName: truncate(String(span.resource.attributes[ATTR_SERVICE_NAME] ?? ""), LIMITS.serviceNameChars),
  };
}
