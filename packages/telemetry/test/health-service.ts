import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { context, trace, type SpanContext } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import type { DestinationStream } from "pino";
// @clasper/proto's index does not export grpc.health.v1 yet; the generated file is the same
// module the package builds from.
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../proto/src/gen/grpc/health/v1/health_pb.js";
import { startTelemetry, type Telemetry } from "../src/index.js";

export { Health };

/**
 * A Health implementation whose behaviour is chosen by the requested service name:
 * "missing" → not_found, "boom" → an unexpected Error (with a cause), anything else → SERVING.
 * It records the span context active inside the handler, to prove the handler runs in the span.
 */
export function healthRoutes(seen: { handlerSpan?: SpanContext | undefined } = {}) {
  return (router: ConnectRouter) => {
    router.service(Health, {
      check(req) {
        seen.handlerSpan = trace.getSpan(context.active())?.spanContext();
        if (req.service === "missing") throw new ConnectError("no such service", Code.NotFound);
        if (req.service === "boom") throw new Error("database exploded", { cause: new Error("socket closed") });
        return create(HealthCheckResponseSchema, { status: ServingStatus.SERVING });
      },
      list() {
        throw new ConnectError("not used here", Code.Unimplemented);
      },
      async *watch() {
        seen.handlerSpan = trace.getSpan(context.active())?.spanContext();
        yield create(HealthCheckResponseSchema, { status: ServingStatus.NOT_SERVING });
        await new Promise((resolve) => setTimeout(resolve, 20));
        yield create(HealthCheckResponseSchema, { status: ServingStatus.SERVING });
      },
    });
  };
}

/** Telemetry with no OTLP target, whose finished spans land in memory for assertions. */
export function recordingTelemetry(serviceName = "test"): {
  telemetry: Telemetry;
  spans: () => ReadableSpan[];
  reset: () => void;
} {
  const telemetry = startTelemetry({ serviceName, env: {} });
  const exporter = new InMemorySpanExporter();
  telemetry.addSpanProcessor(new SimpleSpanProcessor(exporter));
  return { telemetry, spans: () => exporter.getFinishedSpans(), reset: () => exporter.reset() };
}

export function spanNamed(spans: ReadableSpan[], name: string, kind: number): ReadableSpan {
  const span = spans.find((s) => s.name === name && s.kind === kind);
  if (!span) throw new Error(`no span ${name} of kind ${kind} among ${spans.map((s) => s.name).join(", ")}`);
  return span;
}

/** A pino destination that keeps every line, parsed. */
export function captureLines(): { destination: DestinationStream; raw: string[]; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  return {
    destination: { write: (line: string) => void raw.push(line) },
    raw,
    lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
