import { clone, create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  EntityLinksSchema,
  ExecutionScopeSchema,
  IntegrityStatus,
  ToolCallSummarySchema,
  TraceInputSchema,
  TraceOutputSchema,
  TraceSchema,
  TraceSummarySchema,
  TrustStatus,
  type RiskLevel,
  type ToolCallSummary,
  type Trace,
  type TraceStatus,
  type TraceStep,
  type TraceSummary,
} from "@clasper/proto";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import type { SpanRow } from "../store/steps.js";
import type { TraceRow, TraceSummaryRow } from "../store/traces.js";
import { attrNumber, attrString } from "./attributes.js";
import { stepsFromSpans, tokenUsage, type TokenCounts } from "./steps.js";

/** What callers without raw-payload access see instead of a message (seed §4.4). */
export const WITHHELD = "[Sensitive content withheld]";

/** TraceStatus.ERROR as stored. */
const STATUS_ERROR = 3;

/**
 * Stored traces carry no step hashes (the runtime does not sign steps), so integrity is
 * "unsigned" (or "unverified" without steps) and trust is "unverified" (seed §4.2) for every
 * trace; ListTraces' trust_status filter therefore matches all traces for "unverified", none
 * otherwise.
 */
export const STORED_TRUST_STATUS = TrustStatus.UNVERIFIED;

export function rowTokenCounts(row: TraceSummaryRow): TokenCounts {
  return {
    input: row.input_tokens,
    output: row.output_tokens,
    cacheRead: row.cache_read_tokens,
    cacheWrite: row.cache_write_tokens,
    reasoning: row.reasoning_tokens,
  };
}

/** The execution's environment, else labels.environment / labels.env, else "unknown" (seed §4.4). */
function environmentOf(row: TraceSummaryRow): string {
  return row.environment || row.labels["environment"] || row.labels["env"] || "unknown";
}

function entityLinks(row: TraceSummaryRow) {
  return create(EntityLinksSchema, { taskId: row.task_id ?? "", documentId: row.document_id ?? "", messageId: row.message_id ?? "" });
}

/**
 * List view of a stored trace; `annotations` is the first value per key. Written as the message
 * literal rather than through create(), which walks the descriptor for every summary (~4 µs, a
 * sixth of a 50-trace listing's CPU in the trace service); the type still requires every field.
 */
export function traceSummary(row: TraceSummaryRow, annotations: Record<string, string> = {}): TraceSummary {
  return {
    $typeName: TraceSummarySchema.typeName,
    traceId: row.trace_id,
    workspaceId: row.workspace_id ?? "",
    environment: environmentOf(row),
    agentRole: row.agent_role ?? "",
    status: row.status as TraceStatus,
    startedAt: timestampFromDate(row.started_at),
    durationMs: row.duration_ms,
    model: row.model ?? "",
    provider: row.provider ?? "",
    usage: tokenUsage(rowTokenCounts(row)),
    costMicros: row.cost_micros,
    skillVersions: row.skill_versions,
    labels: row.labels,
    riskLevel: (row.risk_level ?? 0) as RiskLevel,
    trustStatus: STORED_TRUST_STATUS,
    toolCallCount: row.tool_call_count,
    errorCode: row.error_code ?? "",
    entityLinks: entityLinks(row),
    annotations,
  };
}

/** The root span: invoke_agent, else the span without a parent. */
export function rootSpan(spans: readonly SpanRow[]): SpanRow | undefined {
  return spans.find((s) => s.operation === GENAI_OPERATION.invokeAgent) ?? spans.find((s) => s.parent_span_id === null);
}

/**
 * The user turn: ingest copies it (redacted) onto the trace row, which also survives the
 * "minimal" storage mode; rows written before that column existed fall back to the root span.
 */
export function inputMessageOf(row: TraceRow, spans: readonly SpanRow[]): string {
  return row.input_message ?? attrString(rootSpan(spans)?.attributes ?? {}, ATTR.inputMessage) ?? "";
}

export function historyCountOf(row: TraceRow, spans: readonly SpanRow[]): number {
  return row.input_history_count ?? Math.trunc(attrNumber(rootSpan(spans)?.attributes ?? {}, ATTR.inputHistoryCount) ?? 0);
}

/** tool_call and tool_result steps paired by call id, in call order (seed §4.1 ToolCallTrace). */
export function toolCallSummaries(steps: readonly TraceStep[]): ToolCallSummary[] {
  const summaries: ToolCallSummary[] = [];
  const byId = new Map<string, ToolCallSummary>();
  for (const step of steps) {
    if (step.detail.case === "toolCall") {
      const call = step.detail.value;
      const summary = create(ToolCallSummarySchema, {
        toolCallId: call.toolCallId,
        toolName: call.toolName,
        ...(call.arguments ? { arguments: call.arguments } : {}),
        permitted: call.permitted,
      });
      summaries.push(summary);
      if (call.toolCallId) byId.set(call.toolCallId, summary);
    } else if (step.detail.case === "toolResult") {
      const result = step.detail.value;
      const summary = byId.get(result.toolCallId) ?? summaries.findLast((s) => s.toolName === result.toolName && s.durationMs === 0n);
      if (!summary) continue;
      if (result.result) summary.result = result.result;
      summary.success = result.success;
      summary.durationMs = step.durationMs;
    }
  }
  return summaries;
}

/** The full trace with payloads; withholdPayloads strips them for callers without access. */
export function traceView(row: TraceRow, spans: readonly SpanRow[]): Trace {
  const steps = stepsFromSpans(spans, row.status === STATUS_ERROR);
  const root = rootSpan(spans)?.attributes ?? {};
  const toolNames = [...new Set(steps.flatMap((s) => (s.detail.case === "toolCall" ? [s.detail.value.toolName] : [])))];
  return create(TraceSchema, {
    traceId: row.trace_id,
    executionId: row.execution_id ?? "",
    workspaceId: row.workspace_id ?? "",
    environment: environmentOf(row),
    agentRole: row.agent_role ?? "",
    userId: row.user_id ?? "",
    status: row.status as TraceStatus,
    startedAt: timestampFromDate(row.started_at),
    ...(row.completed_at ? { completedAt: timestampFromDate(row.completed_at) } : {}),
    durationMs: row.duration_ms,
    workspaceVersionHash: row.workspace_version_hash ?? "",
    skillVersions: row.skill_versions,
    model: row.model ?? "",
    provider: row.provider ?? "",
    input: create(TraceInputSchema, { message: inputMessageOf(row, spans), messageHistoryCount: historyCountOf(row, spans) }),
    output: create(TraceOutputSchema, { message: row.output_message ?? attrString(root, ATTR.outputMessage) ?? "", toolCalls: toolCallSummaries(steps) }),
    steps,
    usage: tokenUsage(rowTokenCounts(row)),
    costMicros: row.cost_micros,
    errorCode: row.error_code ?? "",
    errorMessage: row.error_message ?? "",
    labels: row.labels,
    entityLinks: entityLinks(row),
    riskScore: row.risk_score ?? 0,
    riskLevel: (row.risk_level ?? 0) as RiskLevel,
    decisionId: row.decision_id ?? "",
    usedScope: create(ExecutionScopeSchema, { capabilities: toolNames, steps: steps.length, costMicros: row.cost_micros }),
    integrityStatus: steps.length === 0 ? IntegrityStatus.UNVERIFIED : IntegrityStatus.UNSIGNED,
    integrityFailures: steps.length === 0 ? ["no_steps"] : ["missing_step_hashes"],
    trustStatus: STORED_TRUST_STATUS,
    redactionApplied: row.redaction_types.length > 0,
    redactionTypes: row.redaction_types,
    source: row.source ?? "",
  });
}

/**
 * The trace as a caller without raw-payload access may see it: messages replaced by WITHHELD,
 * completions emptied, tool arguments and results removed (from steps and the tool-call
 * summary), and payload_withheld set. Returns a copy.
 */
export function withholdPayloads(trace: Trace): Trace {
  const copy = clone(TraceSchema, trace);
  copy.payloadWithheld = true;
  if (copy.input?.message) copy.input.message = WITHHELD;
  if (copy.output?.message) copy.output.message = WITHHELD;
  for (const call of copy.output?.toolCalls ?? []) {
    call.arguments = undefined;
    call.result = undefined;
  }
  for (const { detail } of copy.steps) {
    if (detail.case === "llmCall") detail.value.completion = "";
    else if (detail.case === "toolCall") detail.value.arguments = undefined;
    else if (detail.case === "toolResult") detail.value.result = undefined;
  }
  return copy;
}
