import { context, isSpanContextValid, trace } from "@opentelemetry/api";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { pino, type DestinationStream, type Level, type Logger, type LoggerOptions as LoggerSettings } from "pino";
import type { TelemetryEnv } from "./env.js";
import { isServerFault, observeCall, procedureOf, type CallOutcome } from "./rpc.js";

export interface LoggerOptions {
  readonly serviceName: string;
  /** Defaults to LOG_LEVEL from `env`, then "info". */
  readonly level?: string;
  /** Defaults to stdout; tests pass a stream to read the lines back. */
  readonly destination?: DestinationStream;
  readonly env?: TelemetryEnv;
}

/** Header names that carry credentials, redacted wherever they appear up to two levels deep. */
const SECRET_HEADERS = ["authorization", "x-agent-token", "x-clasper-context", "cookie", "set-cookie"];
const SECRET_FIELDS = ["password", "secret"];

/** pino paths need bracket syntax for names with dashes. */
function redactPaths(): string[] {
  const headerKeys = SECRET_HEADERS.map((name) => `["${name}"]`);
  return [
    ...headerKeys,
    ...headerKeys.map((key) => `*${key}`),
    ...headerKeys.map((key) => `*.*${key}`),
    ...SECRET_FIELDS,
    ...SECRET_FIELDS.map((name) => `*.${name}`),
  ];
}

/** trace_id/span_id of the active span, so a log line leads to its trace. */
function traceFields(): Record<string, string> {
  const spanContext = trace.getSpan(context.active())?.spanContext();
  if (!spanContext || !isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/** JSON lines: ISO UTC `time`, `level` as a word, `service.name`, trace ids, `msg`. */
export function createLogger(options: LoggerOptions): Logger {
  const env = options.env ?? process.env;
  const settings: LoggerSettings = {
    level: options.level ?? env.LOG_LEVEL ?? "info",
    base: { "service.name": options.serviceName },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: traceFields,
    redact: { paths: redactPaths(), censor: "[REDACTED]" },
  };
  // Without a destination pino writes synchronously to stdout, so the last lines before a
  // crash are not lost in a buffer.
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

function levelOf(outcome: CallOutcome): Level {
  if (outcome.code === "ok") return "info";
  if (!(outcome.error instanceof ConnectError)) return "error";
  return isServerFault(outcome.error) ? "warn" : "info";
}

/**
 * One line per RPC when it ends: procedure, Connect code, duration. Never messages or headers:
 * they carry user content and credentials. A non-ConnectError is a bug and is logged at error
 * level with its stack and cause; it is rethrown so Connect answers the client as usual.
 * A line below the logger's level costs nothing but the clock reading.
 */
export function loggingInterceptor(logger: Logger): Interceptor {
  return (next) => (req) => {
    const started = performance.now();
    return observeCall(
      () => next(req),
      (outcome) => {
        const level = levelOf(outcome);
        if (!logger.isLevelEnabled(level)) return;
        const line = { procedure: procedureOf(req), code: outcome.code, duration_ms: Math.round((performance.now() - started) * 1000) / 1000 };
        if (level === "error") {
          logger.error({ ...line, err: outcome.error }, "rpc failed unexpectedly");
        } else {
          logger[level](line, "rpc");
        }
      },
    );
  };
}
