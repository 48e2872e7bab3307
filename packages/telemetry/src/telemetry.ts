import type { TextMapPropagator, Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOffSampler, BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { createContentFilteringExporter } from "./content-filter.js";
import { ensureContextManager } from "./context-manager.js";
import { readTraceConfig, type TelemetryEnv } from "./env.js";
import { FanOutSpanProcessor } from "./fan-out-span-processor.js";

export interface TelemetryOptions {
  /** service.name unless OTEL_SERVICE_NAME overrides it. */
  readonly serviceName: string;
  readonly env?: TelemetryEnv;
}

export interface Telemetry {
  /** The effective service.name on the resource (after OTEL_SERVICE_NAME). */
  readonly serviceName: string;
  readonly tracer: Tracer;
  /** This process's own provider; never registered as the global one. */
  readonly provider: NodeTracerProvider;
  /** W3C trace-context, used by the RPC interceptors to extract and inject `traceparent`. */
  readonly propagator: TextMapPropagator;
  /** Adds a processor that sees every span started from now on; flushed and shut down with us. */
  addSpanProcessor(processor: SpanProcessor): void;
  forceFlush(): Promise<void>;
  /** Flushes and stops every processor; safe to call more than once. */
  shutdown(): Promise<void>;
}

/** Instrumentation scope of the spans Clasper itself starts. */
const TRACER_NAME = "clasper";

/**
 * Builds the process's tracing from OTEL_* variables. The provider stays private to Clasper:
 * a library that registers its own global provider can neither see nor redirect our spans, and
 * we never steal theirs.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const env = options.env ?? process.env;
  const config = readTraceConfig(env);
  ensureContextManager();

  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }))
    .merge(resourceFromAttributes(config.resourceAttributes));
  const fanOut = new FanOutSpanProcessor();
  if (!config.disabled && config.otlp) {
    const otlp = new OTLPTraceExporter({ url: config.otlp.url, headers: config.otlp.headers });
    fanOut.add(new BatchSpanProcessor(createContentFilteringExporter(otlp, env)));
  }
  const provider = new NodeTracerProvider({
    resource,
    // Disabled still yields a working tracer so propagation and code paths stay the same; the
    // always-off sampler makes every span non-recording, so no processor ever receives one.
    sampler: config.disabled ? new AlwaysOffSampler() : config.sampler,
    spanProcessors: [fanOut],
  });

  let shutdown: Promise<void> | undefined;
  return {
    serviceName: String(resource.attributes[ATTR_SERVICE_NAME] ?? options.serviceName),
    tracer: provider.getTracer(TRACER_NAME),
    provider,
    propagator: new W3CTraceContextPropagator(),
    addSpanProcessor: (processor) => fanOut.add(processor),
    forceFlush: () => provider.forceFlush(),
    shutdown: () => (shutdown ??= provider.shutdown()),
  };
}
