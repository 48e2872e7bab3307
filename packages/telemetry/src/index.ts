export { startTelemetry, type Telemetry, type TelemetryOptions } from "./telemetry.js";
export type { TelemetryEnv } from "./env.js";
export {
  serverTracingInterceptor,
  clientTracingInterceptor,
  ATTR_RPC_SYSTEM,
  ATTR_RPC_SERVICE,
  ATTR_RPC_METHOD,
  ATTR_RPC_CONNECT_RPC_ERROR_CODE,
} from "./tracing-interceptors.js";
export { withSpan, markSpanFailed } from "./spans.js";
export { createLogger, loggingInterceptor, type LoggerOptions } from "./logging.js";
export { createMetrics, metricsInterceptor, type Metrics, type MetricsOptions } from "./metrics.js";
export { ATTR, GENAI_OPERATION, GOVERNANCE_OPERATION, PAYLOAD_ATTRIBUTES, isExecutionSpanOperation } from "./clasper-attributes.js";
export {
  createIngestSpanProcessor,
  type IngestSpanProcessor,
  type IngestSpanProcessorOptions,
  type SpanDeliveryStats,
} from "./ingest-exporter.js";
export { toIngestSpan, type IngestSpan } from "./ingest-span.js";
export { createContentFilteringExporter } from "./content-filter.js";
