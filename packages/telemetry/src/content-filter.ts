import type { Attributes } from "@opentelemetry/api";
import type { ReadableSpan, SpanExporter, TimedEvent } from "@opentelemetry/sdk-trace-base";
import { PAYLOAD_ATTRIBUTES } from "./clasper-attributes.js";
import { capturesMessageContent, type TelemetryEnv } from "./env.js";

const PAYLOAD_KEYS = new Set(PAYLOAD_ATTRIBUTES);

/**
 * Every event the GenAI conventions define (gen_ai.content.prompt/completion, the message and
 * choice events, gen_ai.client.inference.operation.details) exists to carry content, so the
 * whole gen_ai.* event goes rather than a guess at which of its attributes are safe.
 */
function isContentEvent(event: TimedEvent): boolean {
  return event.name.startsWith("gen_ai.");
}

function withoutPayload(attributes: Attributes): Attributes {
  if (!Object.keys(attributes).some((key) => PAYLOAD_KEYS.has(key))) return attributes;
  return Object.fromEntries(Object.entries(attributes).filter(([key]) => !PAYLOAD_KEYS.has(key)));
}

/**
 * A view of the span without message content. The span itself is shared with the other
 * processors (Clasper's own trace service receives the content and redacts it before storing),
 * so it is copied, never edited.
 */
export function withoutMessageContent(span: ReadableSpan): ReadableSpan {
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => span.spanContext(),
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: withoutPayload(span.attributes),
    links: span.links,
    events: span.events
      .filter((event) => !isContentEvent(event))
      .map((event) => (event.attributes ? { ...event, attributes: withoutPayload(event.attributes) } : event)),
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/**
 * Wraps the exporter that sends spans out of Clasper (OTLP): unless
 * OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is "true", prompts, completions and tool
 * payloads (PAYLOAD_ATTRIBUTES and gen_ai.* events) are removed first, because a collector
 * neither redacts them nor enforces Clasper's tenant boundaries.
 */
export function createContentFilteringExporter(inner: SpanExporter, env: TelemetryEnv): SpanExporter {
  if (capturesMessageContent(env)) return inner;
  return {
    export: (spans, resultCallback) => inner.export(spans.map(withoutMessageContent), resultCallback),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}
