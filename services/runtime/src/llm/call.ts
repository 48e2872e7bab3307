import { setTimeout as delay } from "node:timers/promises";
import { SpanKind, SpanStatusCode, type Context as OtelContext, type Span, type Tracer } from "@opentelemetry/api";
import { stream, type AssistantMessage, type Context } from "@mariozechner/pi-ai";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import type { RuntimeConfig } from "../config.js";
import type { ResolvedModel } from "./models.js";
import { observeProviderExchange, type ProviderExchange } from "./provider-responses.js";
import { addMeter, emptyMeter, meterOf, type Meter } from "./usage.js";

/** Stable error codes of a failed logical call (StreamError.code, span error.type). */
export type LlmErrorCode = "provider_error" | "rate_limited" | "timeout" | "aborted";

/** A logical call that failed after its retries and fallback. */
export class LlmCallError extends Error {
  constructor(
    message: string,
    readonly code: LlmErrorCode,
    /** Usage of every attempt that reported some. */
    readonly meter: Meter,
    /** A response started streaming but ended before reporting usage: its cost is unknown. */
    readonly costUnknown: boolean,
    readonly attempts: number,
  ) {
    super(message);
    this.name = "LlmCallError";
  }
}

export interface LlmRequest {
  /** The model, then the fallback. */
  readonly models: readonly ResolvedModel[];
  readonly context: Context;
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** Aborted when the caller disconnects or the execution's wall time runs out. */
  readonly signal: AbortSignal;
  /** Parent of the chat spans (the invoke_agent span's context). */
  readonly parent: OtelContext;
  /** Text deltas as they arrive; once one is delivered a failure is no longer retried. */
  readonly onTextDelta?: (delta: string) => void;
  /** 1-based number of this call's first attempt within the execution (span attribute). */
  readonly firstAttempt?: number;
}

export interface LlmResult {
  readonly message: AssistantMessage;
  readonly model: ResolvedModel;
  readonly meter: Meter;
  /** Provider requests made, retries and fallback included. */
  readonly attempts: number;
}

export interface LlmCaller {
  call(req: LlmRequest): Promise<LlmResult>;
}

interface AttemptFailure {
  message: string;
  code: LlmErrorCode;
  retryable: boolean;
  retryAfterMs?: number;
}

const FINISH_REASON: Record<string, string> = { stop: "stop", length: "length", toolUse: "tool_calls", error: "error", aborted: "error" };

/** Status code from pi-ai's error message ("429 Rate limit ...") when the HTTP layer saw none. */
function statusOf(exchange: ProviderExchange, message: string): number | undefined {
  if (exchange.status !== undefined && exchange.status >= 400) return exchange.status;
  const match = /^(\d{3})\b/.exec(message.trim());
  return match ? Number(match[1]) : undefined;
}

function classify(message: AssistantMessage, exchange: ProviderExchange, req: LlmRequest, callSignal: AbortSignal, delivered: boolean): AttemptFailure {
  const text = message.errorMessage ?? "provider error";
  if (req.signal.aborted) {
    const timeout = req.signal.reason instanceof DOMException && req.signal.reason.name === "TimeoutError";
    return { message: timeout ? "execution timed out" : "the caller went away", code: timeout ? "timeout" : "aborted", retryable: false };
  }
  // Output already delivered to the caller cannot be taken back, so that attempt is final.
  const retryable = !delivered;
  if (callSignal.aborted) return { message: "model call timed out", code: "timeout", retryable };
  const status = statusOf(exchange, text);
  if (status === 429) return { message: text, code: "rate_limited", retryable, retryAfterMs: exchange.retryAfterMs };
  if (status !== undefined && status >= 500) return { message: text, code: "provider_error", retryable, retryAfterMs: exchange.retryAfterMs };
  if (status !== undefined && status >= 400) return { message: text, code: "provider_error", retryable: false };
  // No status: the connection failed or was reset mid-stream.
  return { message: text, code: "provider_error", retryable };
}

function spanAttributes(model: ResolvedModel, req: LlmRequest, attempt: number) {
  return {
    [ATTR.operationName]: GENAI_OPERATION.chat,
    [ATTR.providerName]: model.provider,
    [ATTR.requestModel]: model.id,
    [ATTR.requestStream]: true,
    [ATTR.llmAttempt]: attempt,
    ...(req.temperature !== undefined ? { [ATTR.requestTemperature]: req.temperature } : {}),
    ...(req.maxTokens !== undefined ? { [ATTR.requestMaxTokens]: req.maxTokens } : {}),
    ...(req.context.systemPrompt ? { [ATTR.systemInstructions]: JSON.stringify([{ type: "text", content: req.context.systemPrompt }]) } : {}),
    [ATTR.inputMessages]: JSON.stringify(req.context.messages.map(genAiMessage)),
  };
}

/** A pi-ai message in the GenAI message schema (role + parts). */
function genAiMessage(message: Context["messages"][number]): unknown {
  if (message.role === "toolResult") {
    return { role: "tool", parts: [{ type: "tool_call_response", id: message.toolCallId, response: message.content.map((c) => (c.type === "text" ? c.text : "")).join("") }] };
  }
  if (message.role === "user") {
    const text = typeof message.content === "string" ? message.content : message.content.map((c) => (c.type === "text" ? c.text : "")).join("");
    return { role: "user", parts: [{ type: "text", content: text }] };
  }
  return {
    role: "assistant",
    parts: message.content.map((c) =>
      c.type === "toolCall" ? { type: "tool_call", id: c.id, name: c.name, arguments: c.arguments } : c.type === "text" ? { type: "text", content: c.text } : { type: "reasoning", content: c.thinking },
    ),
    finish_reason: FINISH_REASON[message.stopReason] ?? message.stopReason,
  };
}

function recordOutcome(span: Span, message: AssistantMessage, meter: Meter, firstChunkMs: number | undefined, startedMs: number): void {
  span.setAttributes({
    [ATTR.responseModel]: message.responseModel ?? message.model,
    [ATTR.responseFinishReasons]: [FINISH_REASON[message.stopReason] ?? message.stopReason],
    [ATTR.usageInputTokens]: meter.input,
    [ATTR.usageOutputTokens]: meter.output,
    [ATTR.usageCacheReadTokens]: meter.cacheRead,
    [ATTR.usageCacheWriteTokens]: meter.cacheWrite,
    [ATTR.usageReasoningTokens]: meter.reasoning,
    [ATTR.costMicros]: meter.totalMicros,
    ...(message.responseId ? { [ATTR.responseId]: message.responseId } : {}),
    ...(firstChunkMs !== undefined ? { [ATTR.timeToFirstChunk]: (firstChunkMs - startedMs) / 1000 } : {}),
  });
  if (message.stopReason !== "error" && message.stopReason !== "aborted") {
    span.setAttribute(ATTR.outputMessages, JSON.stringify([genAiMessage(message)]));
  }
}

/**
 * One logical model call through pi-ai, always streamed: up to CLASPER_RETRY_ATTEMPTS provider
 * requests per model (SDK retries disabled, so nothing stacks) with exponential backoff and
 * jitter on 429 (Retry-After honoured) and 5xx, then the same on the fallback model. Each
 * request is its own `chat {model}` span.
 */
export function createLlmCaller(config: RuntimeConfig, tracer: Tracer, options: { random?: () => number } = {}): LlmCaller {
  const random = options.random ?? Math.random;

  function backoffMs(retry: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return retryAfterMs;
    const base = Math.min(config.CLASPER_RETRY_BASE_DELAY_MS * 2 ** (retry - 1), config.CLASPER_RETRY_MAX_DELAY_MS);
    return Math.max(0, Math.round(base + (random() * 2 - 1) * config.CLASPER_RETRY_JITTER * base));
  }

  async function attempt(model: ResolvedModel, req: LlmRequest, number: number, meter: Meter): Promise<{ message: AssistantMessage } | { failure: AttemptFailure; costUnknown: boolean }> {
    const span = tracer.startSpan(`${GENAI_OPERATION.chat} ${model.id}`, { kind: SpanKind.CLIENT, attributes: spanAttributes(model, req, number) }, req.parent);
    const callSignal = AbortSignal.any([req.signal, AbortSignal.timeout(config.CLASPER_LLM_TIMEOUT_MS)]);
    const startedMs = Date.now();
    let firstChunkMs: number | undefined;
    let delivered = false;
    let responded = false;
    try {
      const { result: message, exchange } = await observeProviderExchange(model.model.api, async () => {
        const events = stream(model.model, req.context, {
          apiKey: model.apiKey,
          signal: callSignal,
          maxRetries: 0,
          timeoutMs: config.CLASPER_LLM_TIMEOUT_MS,
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.maxTokens !== undefined ? { maxTokens: req.maxTokens } : {}),
          onResponse: () => {
            responded = true;
          },
        });
        for await (const event of events) {
          if (event.type === "text_delta") {
            firstChunkMs ??= Date.now();
            if (req.onTextDelta) {
              delivered = true;
              req.onTextDelta(event.delta);
            }
          } else if (event.type === "done") {
            return event.message;
          } else if (event.type === "error") {
            return event.error;
          }
        }
        return events.result();
      });
      const used = meterOf(message.usage, exchange.reasoningTokens ?? 0);
      addMeter(meter, used);
      recordOutcome(span, message, used, firstChunkMs, startedMs);
      if (message.stopReason !== "error" && message.stopReason !== "aborted") return { message };
      const failure = classify(message, exchange, req, callSignal, delivered);
      span.setAttribute(ATTR.errorType, failure.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
      // A response that began and then broke off never reported usage: its cost is unknown.
      return { failure, costUnknown: responded && used.input === 0 && used.output === 0 };
    } finally {
      span.end();
    }
  }

  return {
    async call(req) {
      const meter = emptyMeter();
      let attempts = 0;
      let costUnknown = false;
      let last: AttemptFailure = { message: "no model configured", code: "provider_error", retryable: false };
      for (const model of req.models) {
        for (let retry = 1; retry <= config.CLASPER_RETRY_ATTEMPTS; retry += 1) {
          attempts += 1;
          const outcome = await attempt(model, req, (req.firstAttempt ?? 1) + attempts - 1, meter);
          if ("message" in outcome) return { message: outcome.message, model, meter, attempts };
          last = outcome.failure;
          costUnknown ||= outcome.costUnknown;
          if (!last.retryable) throw new LlmCallError(last.message, last.code, meter, costUnknown, attempts);
          if (retry === config.CLASPER_RETRY_ATTEMPTS) break;
          const wait = backoffMs(retry, last.retryAfterMs);
          // A server asking for a longer pause than we allow is treated as exhausted.
          if (wait > config.CLASPER_RETRY_MAX_DELAY_MS && last.retryAfterMs !== undefined) break;
          try {
            await delay(wait, undefined, { signal: req.signal });
          } catch {
            throw new LlmCallError("the caller went away", "aborted", meter, costUnknown, attempts);
          }
        }
      }
      throw new LlmCallError(last.message, last.code, meter, costUnknown, attempts);
    },
  };
}

/** The concatenated text blocks of an assistant message. */
export function textOf(message: AssistantMessage): string {
  return message.content.map((c) => (c.type === "text" ? c.text : "")).join("");
}

