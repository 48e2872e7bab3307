/**
 * Span names and attributes Clasper records for agent executions: the contract between the code
 * that emits spans (runtime, governance) and the trace service that assembles them into traces.
 * GenAI names follow the OpenTelemetry semantic conventions (v1.41, Development status); Clasper's
 * own facts use the `clasper.` prefix. docs/TRACING.md explains each one.
 */

/** gen_ai.operation.name values; a span with one of these is an execution step. */
export const GENAI_OPERATION = {
  invokeAgent: "invoke_agent",
  chat: "chat",
  executeTool: "execute_tool",
} as const;

/** Operation name of Clasper's governance decision span (not a GenAI convention). */
export const GOVERNANCE_OPERATION = "clasper.governance_decision";

export const ATTR = {
  // OpenTelemetry GenAI semantic conventions.
  operationName: "gen_ai.operation.name",
  providerName: "gen_ai.provider.name",
  requestModel: "gen_ai.request.model",
  responseModel: "gen_ai.response.model",
  requestTemperature: "gen_ai.request.temperature",
  requestMaxTokens: "gen_ai.request.max_tokens",
  requestStream: "gen_ai.request.stream",
  responseFinishReasons: "gen_ai.response.finish_reasons",
  responseId: "gen_ai.response.id",
  timeToFirstChunk: "gen_ai.response.time_to_first_chunk",
  usageInputTokens: "gen_ai.usage.input_tokens",
  usageOutputTokens: "gen_ai.usage.output_tokens",
  usageCacheReadTokens: "gen_ai.usage.cache_read.input_tokens",
  usageCacheWriteTokens: "gen_ai.usage.cache_creation.input_tokens",
  usageReasoningTokens: "gen_ai.usage.reasoning.output_tokens",
  agentName: "gen_ai.agent.name",
  conversationId: "gen_ai.conversation.id",
  inputMessages: "gen_ai.input.messages",
  outputMessages: "gen_ai.output.messages",
  systemInstructions: "gen_ai.system_instructions",
  toolName: "gen_ai.tool.name",
  toolCallId: "gen_ai.tool.call.id",
  toolCallArguments: "gen_ai.tool.call.arguments",
  toolCallResult: "gen_ai.tool.call.result",
  errorType: "error.type",

  // Clasper: the execution (on the invoke_agent span).
  executionId: "clasper.execution.id",
  workspaceId: "clasper.workspace.id",
  environment: "clasper.environment",
  userId: "clasper.user.id",
  workspaceVersion: "clasper.workspace.version",
  /** JSON object string: skill name → version. */
  skillVersions: "clasper.skill_versions",
  inputMessage: "clasper.input.message",
  inputHistoryCount: "clasper.input.history_count",
  outputMessage: "clasper.output.message",
  taskId: "clasper.task.id",
  documentId: "clasper.document.id",
  messageId: "clasper.message.id",
  /** "blocked" when governance stopped the execution; otherwise status comes from the span status. */
  executionStatus: "clasper.execution.status",
  source: "clasper.source",

  // Clasper: cost of a chat span, integer micro-dollars (cache and reasoning tokens included).
  costMicros: "clasper.cost_micros",
  llmAttempt: "clasper.llm.attempt",

  // Clasper: tool permission on an execute_tool span.
  toolPermitted: "clasper.tool.permitted",
  toolPermissionReason: "clasper.tool.permission_reason",
  toolIdempotencyKey: "clasper.tool.idempotency_key",

  // Clasper: governance decision span.
  decisionEffect: "clasper.decision.effect",
  decisionId: "clasper.decision.id",
  decisionReasons: "clasper.decision.reasons",
  decisionExplanation: "clasper.decision.explanation",
  matchedPolicies: "clasper.policy.matched",
  riskScore: "clasper.risk.score",
  riskLevel: "clasper.risk.level",
  reservationId: "clasper.budget.reservation_id",
  reservedMicros: "clasper.budget.reserved_micros",
  overrideUsed: "clasper.override.used",
} as const;

/** Attributes that carry message or tool payloads: redacted before storage, withheld from non-admins. */
export const PAYLOAD_ATTRIBUTES: readonly string[] = [
  ATTR.inputMessages,
  ATTR.outputMessages,
  ATTR.systemInstructions,
  ATTR.toolCallArguments,
  ATTR.toolCallResult,
  ATTR.inputMessage,
  ATTR.outputMessage,
];

/** True for spans the trace service stores: execution steps, not RPC plumbing. */
export function isExecutionSpanOperation(operation: unknown): boolean {
  return (
    operation === GENAI_OPERATION.invokeAgent ||
    operation === GENAI_OPERATION.chat ||
    operation === GENAI_OPERATION.executeTool ||
    operation === GOVERNANCE_OPERATION
  );
}
