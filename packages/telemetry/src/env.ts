import { diag, type Attributes } from "@opentelemetry/api";
import { parseKeyPairsIntoRecord } from "@opentelemetry/core";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";

/** The environment telemetry is configured from; `process.env` in production, a literal in tests. */
export type TelemetryEnv = Readonly<Record<string, string | undefined>>;

/** Where and how spans leave the process over OTLP/HTTP. */
export interface OtlpTraceTarget {
  readonly url: string;
  readonly headers: Record<string, string>;
}

export interface TraceConfig {
  readonly disabled: boolean;
  /** Attributes from OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, to lay over the defaults. */
  readonly resourceAttributes: Attributes;
  readonly sampler: Sampler;
  /** Undefined when no endpoint is configured or OTEL_TRACES_EXPORTER excludes otlp. */
  readonly otlp: OtlpTraceTarget | undefined;
}

/*
 * Why this file reads variables itself: the SDK's own readers (buildSamplerFromEnv, envDetector,
 * the OTLP exporter's env fallback) read `process.env` directly, while a service passes its own
 * environment (STYLE.md: nothing but the config layer reads process.env) and tests pass literals.
 * So we read the handful of variables that decide *what* to build from `env`, parse them with the
 * SDK's parsers where they are public (parseKeyPairsIntoRecord), build SDK objects from the
 * results, and leave every tuning variable we do not pass explicitly (OTEL_BSP_*,
 * OTEL_EXPORTER_OTLP_TIMEOUT/COMPRESSION/CERTIFICATE, span limits) to the SDK.
 */
export function readTraceConfig(env: TelemetryEnv): TraceConfig {
  return {
    disabled: isTrue(env.OTEL_SDK_DISABLED),
    resourceAttributes: resourceAttributesFrom(env),
    sampler: samplerFrom(env),
    otlp: otlpTargetFrom(env),
  };
}

/**
 * OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: whether prompts, completions and tool
 * payloads may leave the process over OTLP. Off unless "true", as the GenAI conventions advise.
 */
export function capturesMessageContent(env: TelemetryEnv): boolean {
  return isTrue(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT);
}

/** The spec's boolean rule: only a case-insensitive "true" is true. */
function isTrue(value: string | undefined): boolean {
  return value?.trim().toLowerCase() === "true";
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/**
 * OTEL_RESOURCE_ATTRIBUTES uses the same percent-encoded `k=v,k=v` grammar as baggage, which
 * parseKeyPairsIntoRecord implements. OTEL_SERVICE_NAME wins over a service.name given there.
 */
function resourceAttributesFrom(env: TelemetryEnv): Attributes {
  const attributes: Attributes = parseKeyPairsIntoRecord(nonEmpty(env.OTEL_RESOURCE_ATTRIBUTES));
  const serviceName = nonEmpty(env.OTEL_SERVICE_NAME);
  if (serviceName) attributes[ATTR_SERVICE_NAME] = serviceName;
  return attributes;
}

/** Same names and defaults as the SDK's buildSamplerFromEnv (which only reads process.env). */
function samplerFrom(env: TelemetryEnv): Sampler {
  const name = nonEmpty(env.OTEL_TRACES_SAMPLER)?.toLowerCase() ?? "parentbased_always_on";
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(samplerRatioFrom(env));
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(samplerRatioFrom(env)) });
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      diag.warn(`OTEL_TRACES_SAMPLER="${name}" is not supported; using parentbased_always_on`);
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

function samplerRatioFrom(env: TelemetryEnv): number {
  const raw = nonEmpty(env.OTEL_TRACES_SAMPLER_ARG);
  if (raw === undefined) return 1;
  const ratio = Number(raw);
  if (Number.isNaN(ratio) || ratio < 0 || ratio > 1) {
    diag.warn(`OTEL_TRACES_SAMPLER_ARG="${raw}" is not a ratio in [0, 1]; using 1`);
    return 1;
  }
  return ratio;
}

/**
 * OTLP/HTTP is on only when an endpoint is configured: the spec's default endpoint
 * (localhost:4318) would make every process without a collector retry into the void.
 */
function otlpTargetFrom(env: TelemetryEnv): OtlpTraceTarget | undefined {
  const exporters = (nonEmpty(env.OTEL_TRACES_EXPORTER) ?? "otlp")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  for (const name of exporters) {
    if (name !== "otlp" && name !== "none") diag.warn(`OTEL_TRACES_EXPORTER "${name}" is not supported; ignored`);
  }
  if (exporters.includes("none") || !exporters.includes("otlp")) return undefined;

  const url = otlpTracesUrl(env);
  if (url === undefined) return undefined;
  return {
    url,
    // Signal-specific headers override the generic ones, as in the SDK's env reader.
    headers: {
      ...parseKeyPairsIntoRecord(nonEmpty(env.OTEL_EXPORTER_OTLP_HEADERS)),
      ...parseKeyPairsIntoRecord(nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS)),
    },
  };
}

/** The signal endpoint is used as given; the generic one gets `v1/traces` appended (OTLP spec). */
function otlpTracesUrl(env: TelemetryEnv): string | undefined {
  const tracesEndpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (tracesEndpoint !== undefined) return validUrl(tracesEndpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const endpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (endpoint === undefined) return undefined;
  return validUrl(`${endpoint.endsWith("/") ? endpoint : `${endpoint}/`}v1/traces`, "OTEL_EXPORTER_OTLP_ENDPOINT");
}

function validUrl(url: string, variable: string): string {
  try {
    return new URL(url).toString();
  } catch {
    throw new Error(`${variable} is not a valid URL: ${url}`);
  }
}
