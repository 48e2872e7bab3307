import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  DecisionEffect,
  GovernanceDecisionStepSchema,
  LlmCallStepSchema,
  RiskLevel,
  StepErrorSchema,
  StepType,
  TokenUsageSchema,
  ToolCallStepSchema,
  ToolResultStepSchema,
  TraceStepSchema,
  type TokenUsage,
  type TraceStep,
} from "@clasper/proto";
import { ATTR, GENAI_OPERATION, GOVERNANCE_OPERATION } from "@clasper/telemetry";
import type { SpanRow } from "../store/steps.js";
import { attrBool, attrInt, attrMessages, attrNumber, attrString, attrStrings, attrValue, type Attributes } from "./attributes.js";

/** OpenTelemetry span status code of a failed span. */
export const SPAN_STATUS_ERROR = 2;

export interface TokenCounts {
  input: bigint;
  output: bigint;
  cacheRead: bigint;
  cacheWrite: bigint;
  reasoning: bigint;
}

/**
 * TokenUsage from stored counts. Stored input counts follow OpenTelemetry
 * (gen_ai.usage.input_tokens includes cache reads and writes), while TokenUsage.prompt_tokens
 * excludes them, so the cache share is taken out; total is prompt + cache + completion.
 */
export function tokenUsage(t: TokenCounts): TokenUsage {
  const cache = t.cacheRead + t.cacheWrite;
  const prompt = t.input > cache ? t.input - cache : 0n;
  return create(TokenUsageSchema, {
    promptTokens: prompt,
    completionTokens: t.output,
    totalTokens: prompt + cache + t.output,
    cacheReadTokens: t.cacheRead,
    cacheWriteTokens: t.cacheWrite,
    reasoningTokens: t.reasoning,
  });
}

export function spanTokenCounts(attrs: Attributes): TokenCounts {
  return {
    input: attrInt(attrs, ATTR.usageInputTokens),
    output: attrInt(attrs, ATTR.usageOutputTokens),
    cacheRead: attrInt(attrs, ATTR.usageCacheReadTokens),
    cacheWrite: attrInt(attrs, ATTR.usageCacheWriteTokens),
    reasoning: attrInt(attrs, ATTR.usageReasoningTokens),
  };
}

const RISK_LEVELS: Record<string, RiskLevel> = {
  low: RiskLevel.LOW,
  medium: RiskLevel.MEDIUM,
  high: RiskLevel.HIGH,
  critical: RiskLevel.CRITICAL,
};

/** clasper.risk.level as "high" or as the RiskLevel number. */
export function riskLevelOf(attrs: Attributes): RiskLevel {
  const raw = attrString(attrs, ATTR.riskLevel)?.toLowerCase();
  if (raw === undefined) return RiskLevel.UNSPECIFIED;
  const byName = RISK_LEVELS[raw.replace(/^risk_level_/, "")];
  if (byName !== undefined) return byName;
  const n = Number(raw);
  return n >= 1 && n <= 4 ? (n as RiskLevel) : RiskLevel.UNSPECIFIED;
}

const EFFECTS: Record<string, DecisionEffect> = {
  allow: DecisionEffect.ALLOW,
  deny: DecisionEffect.DENY,
  require_approval: DecisionEffect.REQUIRE_APPROVAL,
};

function durationMs(span: SpanRow): bigint {
  return BigInt(Math.max(0, span.end_time.getTime() - span.start_time.getTime()));
}

function base(span: SpanRow, type: StepType, at: Date, duration: bigint): Pick<TraceStep, "stepId" | "parentStepId" | "type" | "startedAt" | "durationMs"> {
  return { stepId: span.span_id, parentStepId: span.parent_span_id ?? "", type, startedAt: timestampFromDate(at), durationMs: duration };
}

/** The reply text of a chat span (its assistant output messages). */
export function completionOf(attrs: Attributes): string {
  return (attrMessages(attrs, ATTR.outputMessages) ?? []).map((m) => m.text).filter((t) => t !== "").join("\n");
}

/** First finish reason: gen_ai.response.finish_reasons, else the output message's own. */
export function finishReasonOf(attrs: Attributes): string {
  return attrStrings(attrs, ATTR.responseFinishReasons)[0] ?? (attrMessages(attrs, ATTR.outputMessages) ?? []).find((m) => m.finishReason)?.finishReason ?? "";
}

function llmCallStep(span: SpanRow): TraceStep {
  const a = span.attributes;
  const output = attrMessages(a, ATTR.outputMessages) ?? [];
  const finishReason = finishReasonOf(a);
  const ttfSeconds = attrNumber(a, ATTR.timeToFirstChunk);
  return create(TraceStepSchema, {
    ...base(span, StepType.LLM_CALL, span.start_time, durationMs(span)),
    detail: {
      case: "llmCall",
      value: create(LlmCallStepSchema, {
        model: attrString(a, ATTR.responseModel) ?? attrString(a, ATTR.requestModel) ?? "",
        provider: attrString(a, ATTR.providerName) ?? "",
        usage: tokenUsage(spanTokenCounts(a)),
        costMicros: attrInt(a, ATTR.costMicros),
        finishReason,
        hasToolCalls: finishReason === "tool_calls" || output.some((m) => m.toolCalls.length > 0),
        attempt: Math.trunc(attrNumber(a, ATTR.llmAttempt) ?? 1),
        timeToFirstTokenMs: ttfSeconds === undefined ? 0n : BigInt(Math.round(ttfSeconds * 1000)),
        completion: completionOf(a),
      }),
    },
  });
}

/** An execute_tool span is two steps: the call (at its start) and the result (at its end, carrying the duration). */
function toolSteps(span: SpanRow): TraceStep[] {
  const a = span.attributes;
  const toolCallId = attrString(a, ATTR.toolCallId) ?? "";
  const toolName = attrString(a, ATTR.toolName) ?? span.name.replace(/^execute_tool\s*/, "");
  const permitted = attrBool(a, ATTR.toolPermitted) ?? true;
  const failed = span.status_code === SPAN_STATUS_ERROR || !permitted;
  const args = attrValue(a, ATTR.toolCallArguments);
  const output = attrValue(a, ATTR.toolCallResult);
  const call = create(TraceStepSchema, {
    ...base(span, StepType.TOOL_CALL, span.start_time, 0n),
    detail: {
      case: "toolCall",
      value: create(ToolCallStepSchema, {
        toolCallId,
        toolName,
        ...(args ? { arguments: args } : {}),
        permitted,
        permissionReason: attrString(a, ATTR.toolPermissionReason) ?? "",
        idempotencyKey: attrString(a, ATTR.toolIdempotencyKey) ?? "",
      }),
    },
  });
  const result = create(TraceStepSchema, {
    ...base(span, StepType.TOOL_RESULT, span.end_time, durationMs(span)),
    detail: {
      case: "toolResult",
      value: create(ToolResultStepSchema, {
        toolCallId,
        toolName,
        success: !failed,
        ...(output ? { result: output } : {}),
        error: failed ? (span.status_message ?? attrString(a, ATTR.toolPermissionReason) ?? attrString(a, ATTR.errorType) ?? "") : "",
      }),
    },
  });
  return [call, result];
}

function governanceStep(span: SpanRow): TraceStep {
  const a = span.attributes;
  return create(TraceStepSchema, {
    ...base(span, StepType.GOVERNANCE_DECISION, span.start_time, durationMs(span)),
    detail: {
      case: "governanceDecision",
      value: create(GovernanceDecisionStepSchema, {
        decision: EFFECTS[attrString(a, ATTR.decisionEffect)?.toLowerCase() ?? ""] ?? DecisionEffect.UNSPECIFIED,
        decisionId: attrString(a, ATTR.decisionId) ?? "",
        matchedPolicies: attrStrings(a, ATTR.matchedPolicies),
        riskScore: Math.trunc(attrNumber(a, ATTR.riskScore) ?? 0),
        riskLevel: riskLevelOf(a),
        reservationId: attrString(a, ATTR.reservationId) ?? "",
        reservedMicros: attrInt(a, ATTR.reservedMicros),
        reasons: attrStrings(a, ATTR.decisionReasons),
        explanation: attrString(a, ATTR.decisionExplanation) ?? "",
        overrideUsed: attrBool(a, ATTR.overrideUsed) ?? false,
      }),
    },
  });
}

function errorStep(span: SpanRow, at: Date, code: string, message: string, recoverable: boolean): TraceStep {
  return create(TraceStepSchema, {
    ...base(span, StepType.ERROR, at, 0n),
    detail: { case: "error", value: create(StepErrorSchema, { code, message, recoverable }) },
  });
}

/**
 * Error steps of a span: one per recorded `exception` event, or, for a failed span without
 * one, one from its status. An error is recoverable when the execution went on: it happened
 * below the root and the trace did not end in error.
 */
function errorSteps(span: SpanRow, traceFailed: boolean): TraceStep[] {
  const failed = span.status_code === SPAN_STATUS_ERROR;
  const recoverable = !failed || (span.parent_span_id !== null && !traceFailed);
  const exceptions = span.events.filter((e) => e.name === "exception");
  if (exceptions.length > 0) {
    return exceptions.map((e) => {
      const at = new Date(e.time);
      return errorStep(
        span,
        Number.isNaN(at.getTime()) ? span.end_time : at,
        attrString(e.attributes, "exception.type") ?? attrString(span.attributes, ATTR.errorType) ?? "error",
        attrString(e.attributes, "exception.message") ?? span.status_message ?? "",
        recoverable,
      );
    });
  }
  if (!failed) return [];
  return [errorStep(span, span.end_time, attrString(span.attributes, ATTR.errorType) ?? "error", span.status_message ?? "", recoverable)];
}

/**
 * The steps of a trace from its spans: chat → llm_call, execute_tool → tool_call + tool_result,
 * clasper.governance_decision → governance_decision, failures and exception events → error.
 * Ordered by time (stable, so steps of one instant keep span order).
 */
export function stepsFromSpans(spans: readonly SpanRow[], traceFailed: boolean): TraceStep[] {
  const steps: TraceStep[] = [];
  for (const span of spans) {
    if (span.operation === GENAI_OPERATION.chat) steps.push(llmCallStep(span));
    else if (span.operation === GENAI_OPERATION.executeTool) steps.push(...toolSteps(span));
    else if (span.operation === GOVERNANCE_OPERATION) steps.push(governanceStep(span));
    steps.push(...errorSteps(span, traceFailed));
  }
  const at = (s: TraceStep) => (s.startedAt ? timestampMs(s.startedAt) : 0);
  return steps.sort((x, y) => at(x) - at(y)); // Array.prototype.sort is stable.
}
