import { create } from "@bufbuild/protobuf";
import {
  ChatMessageSchema,
  GetReplayContextResponseSchema,
  MessageRole,
  ModelSettingsSchema,
  RecordedLlmResponseSchema,
  RecordedRequestSchema,
  RecordedToolCallSchema,
  RecordedToolResultSchema,
  type ChatMessage,
  type GetReplayContextResponse,
} from "@clasper/proto";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import type { SpanRow } from "../store/steps.js";
import type { TraceRow } from "../store/traces.js";
import { attrMessages, attrNumber, attrString, attrValue, toValue, type GenAiMessage } from "./attributes.js";
import { completionOf, finishReasonOf, SPAN_STATUS_ERROR, spanTokenCounts, tokenUsage } from "./steps.js";
import { historyCountOf, inputMessageOf, rootSpan } from "./view.js";

const ROLES: Record<string, MessageRole> = { user: MessageRole.USER, assistant: MessageRole.ASSISTANT, system: MessageRole.SYSTEM };

/**
 * The history sent before the user turn: the first model call's input messages minus system
 * instructions and the final user turn (which is RecordedRequest.message). Tool messages cannot
 * occur before the first call.
 */
function historyOf(first: GenAiMessage[], message: string): ChatMessage[] {
  const turns = first.filter((m) => ROLES[m.role] !== undefined && m.role !== "system");
  const last = turns[turns.length - 1];
  if (last && last.role === "user" && (message === "" || last.text === message)) turns.pop();
  return turns.map((m) => create(ChatMessageSchema, { role: ROLES[m.role] ?? MessageRole.UNSPECIFIED, content: m.text }));
}

/**
 * Everything a deterministic re-run needs, read from the trace row and its spans: the request
 * (from the root span and the first chat span), model settings (first chat span's request
 * attributes; a later call with another requested model is the fallback), every recorded model
 * response (text and requested tool calls) and tool result in order. `missing` lists what the
 * stored trace lacks, and `complete` is false when anything is missing; with
 * `withholdPayloads` (caller without raw-payload access) every payload is left out and
 * "payloads_withheld" is listed.
 */
export function replayContext(row: TraceRow, spans: readonly SpanRow[], withholdPayloads: boolean): GetReplayContextResponse {
  const root = rootSpan(spans)?.attributes ?? {};
  const chats = spans.filter((s) => s.operation === GENAI_OPERATION.chat);
  const tools = spans.filter((s) => s.operation === GENAI_OPERATION.executeTool);
  const first = chats[0]?.attributes ?? {};
  const missing: string[] = [];
  const payload = <T>(value: T, empty: T): T => (withholdPayloads ? empty : value);

  const message = inputMessageOf(row, spans);
  const firstInput = attrMessages(first, ATTR.inputMessages);
  const history = firstInput ? historyOf(firstInput, message) : [];
  const historyCount = historyCountOf(row, spans);
  const systemPrompt = attrString(first, ATTR.systemInstructions) ?? attrString(root, ATTR.systemInstructions) ?? firstInput?.filter((m) => m.role === "system").map((m) => m.text).join("\n") ?? "";

  const requestedModel = attrString(first, ATTR.requestModel) ?? row.model ?? "";
  const fallback = chats.map((s) => attrString(s.attributes, ATTR.requestModel)).find((m) => m !== undefined && m !== requestedModel) ?? "";
  const modelSettings = create(ModelSettingsSchema, {
    provider: attrString(first, ATTR.providerName) ?? row.provider ?? "",
    model: requestedModel,
    fallbackModel: fallback,
    temperature: attrNumber(first, ATTR.requestTemperature) ?? 0,
    maxTokens: Math.trunc(attrNumber(first, ATTR.requestMaxTokens) ?? 0),
  });

  const llmResponses = chats.map((span, sequence) => {
    const a = span.attributes;
    const output = attrMessages(a, ATTR.outputMessages);
    if (!output && !withholdPayloads) missing.push(`llm_response:${sequence}`);
    return create(RecordedLlmResponseSchema, {
      stepId: span.span_id,
      sequence,
      model: attrString(a, ATTR.responseModel) ?? attrString(a, ATTR.requestModel) ?? "",
      provider: attrString(a, ATTR.providerName) ?? "",
      content: payload(completionOf(a), ""),
      toolCalls: payload(
        (output ?? []).flatMap((m) => m.toolCalls).map((c) => create(RecordedToolCallSchema, { toolCallId: c.id, toolName: c.name, arguments: toValue(c.arguments) })),
        [],
      ),
      finishReason: finishReasonOf(a),
      usage: tokenUsage(spanTokenCounts(a)),
    });
  });

  const toolResults = tools.map((span) => {
    const a = span.attributes;
    const failed = span.status_code === SPAN_STATUS_ERROR;
    return create(RecordedToolResultSchema, {
      toolCallId: attrString(a, ATTR.toolCallId) ?? "",
      toolName: attrString(a, ATTR.toolName) ?? "",
      success: !failed,
      result: payload(attrValue(a, ATTR.toolCallResult), undefined),
      error: failed ? (span.status_message ?? "") : "",
    });
  });

  if (withholdPayloads) missing.push("payloads_withheld");
  if (spans.length === 0) missing.push("steps");
  if (message === "" && !withholdPayloads) missing.push("input_message");
  if (history.length < historyCount && !withholdPayloads) missing.push("history_messages");
  if (chats.length > 0 && requestedModel === "") missing.push("model_settings");
  if (!row.workspace_version_hash) missing.push("workspace_version");
  if (row.redaction_types.length > 0) missing.push("redacted");

  return create(GetReplayContextResponseSchema, {
    traceId: row.trace_id,
    workspaceId: row.workspace_id ?? "",
    environment: row.environment ?? "",
    workspaceVersionHash: row.workspace_version_hash ?? "",
    skillVersions: row.skill_versions,
    modelSettings,
    originalRequest: create(RecordedRequestSchema, {
      source: row.source ?? attrString(root, ATTR.source) ?? "",
      userId: row.user_id ?? "",
      sessionKey: attrString(root, ATTR.conversationId) ?? "",
      agentRole: row.agent_role ?? "",
      message: payload(message, ""),
      messages: payload(history, []),
      taskId: row.task_id ?? "",
      systemPrompt: payload(systemPrompt, ""),
    }),
    llmResponses,
    toolResults,
    complete: missing.length === 0,
    missing,
  });
}
