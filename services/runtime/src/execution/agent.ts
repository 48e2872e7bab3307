import { randomBytes } from "node:crypto";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, ROOT_CONTEXT, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import type { AssistantMessage, Message, Tool, UserMessage } from "@mariozechner/pi-ai";
import { clasperError, errorInfoOf, uuidv7 } from "@clasper/core";
import { DEFAULT_WORKSPACE } from "@clasper/auth";
import { ControlPlaneError, createControlPlaneClient, idempotencyKey, withRetry, type ControlPlaneClient } from "@clasper/control-plane";
import { AuditEventType, MessageRole, type ChatMessage, type Webhook } from "@clasper/proto";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import { backendSettings } from "../config.js";
import { LlmCallError, textOf } from "../llm/call.js";
import { modelChain, type ResolvedModel } from "../llm/models.js";
import { addMeter, emptyMeter, tokenUsageOf, worstCaseMicros, type Meter } from "../llm/usage.js";
import { preflightDenialError, type AuditRecord } from "../governance.js";
import { offeredTools } from "../tools/catalog.js";
import { createToolRunner } from "../tools/runner.js";
import { allowedTools, assembleSystemPrompt, contextWarning, estimateTokens } from "../prompt/index.js";
import type { RuntimeContext } from "../runtime-context.js";
import { roleOfSession } from "./session.js";
import { CALL, RUNTIME_STEP, TaskResolver, taskSpec, type TaskSpec } from "./task.js";
import { fireWebhook } from "./webhook.js";

export const HEARTBEAT_OK = "HEARTBEAT_OK";

/** The fields SendMessage and StreamMessage share. */
export interface AgentRequest {
  readonly source: "send" | "stream";
  /** The caller's tenant (from the verified context): agent tokens are cached per tenant. */
  readonly tenantId: string;
  readonly userId: string;
  readonly sessionKey: string;
  readonly message: string;
  readonly messages: readonly ChatMessage[];
  readonly taskId: string;
  readonly taskTitle: string;
  readonly taskDescription: string;
  readonly taskMetadata?: JsonObject | undefined;
  readonly metadata?: JsonObject | undefined;
  readonly webhook?: Webhook | undefined;
  readonly workspaceId: string;
  readonly environment: string;
  readonly decisionToken: string;
}

export type AgentEvent =
  | { type: "start"; traceId: string; executionId: string; taskId: string }
  | { type: "chunk"; data: string }
  | { type: "tool_call"; id: string; name: string; arguments: Record<string, unknown> }
  | { type: "tool_result"; id: string; name: string; success: boolean; result: unknown; error?: string | undefined };

export type AgentOutcome =
  | {
      status: "ok";
      taskId: string;
      traceId: string;
      executionId: string;
      response: string;
      meter: Meter;
      model: string;
      contextWarning: string | undefined;
    }
  | { status: "approval_required"; traceId: string; executionId: string; decisionId: string; expiresAt: Date | undefined };

/** The caller-facing error of a failed execution, with the stable code streams report. */
export function executionError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof LlmCallError) {
    const status = err.code === "timeout" ? Code.DeadlineExceeded : err.code === "aborted" ? Code.Canceled : Code.Unavailable;
    return clasperError(status, `LLM call failed: ${err.message}`, { reason: err.code });
  }
  if (err instanceof ControlPlaneError) {
    return clasperError(Code.Unavailable, err.message, { reason: "control_plane_error", httpStatus: 502 });
  }
  return ConnectError.from(err);
}

export function errorCodeOf(err: ConnectError): string {
  return errorInfoOf(err)?.code || Code[err.code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** `{ [key]: value }` when the value is set (exactOptionalPropertyTypes-friendly spreading). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function metaString(metadata: JsonObject | undefined, key: string): string | undefined {
  const value = metadata?.[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** pi-ai messages for the history; system-role entries are dropped (seed §2.1). */
function historyMessages(history: readonly ChatMessage[], model: ResolvedModel): Message[] {
  const out: Message[] = [];
  for (const m of history) {
    if (m.role === MessageRole.USER) out.push({ role: "user", content: m.content, timestamp: 0 });
    else if (m.role === MessageRole.ASSISTANT) {
      out.push({
        role: "assistant",
        content: [{ type: "text", text: m.content }],
        api: model.model.api,
        provider: model.provider,
        model: model.id,
        usage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0, cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 } },
        stopReason: "stop",
        timestamp: 0,
      });
    }
  }
  return out;
}

export function traceIdOf(span: Span): string {
  const id = span.spanContext().traceId;
  // Tracing off (no telemetry in this host): still a unique id for keys and the response.
  return /^0+$/.test(id) ? randomBytes(16).toString("hex") : id;
}

/**
 * One governed, traced agent turn, shared by SendMessage and StreamMessage: workspace → prompt →
 * tools → preflight (reserve) → model/tool loop → reply posted → settle → audit → webhook.
 * `emit` receives stream events; send passes none.
 */
/**
 * The checks of a request that need no call (the session key names the user, a task is given or
 * configured): they throw InvalidArgument naming the field. StreamMessage runs them before its
 * stream starts, so such a request is refused with a 400 rather than an error event.
 */
export function agentInput(rt: RuntimeContext, req: AgentRequest): { role: string; spec: TaskSpec } {
  return { role: roleOfSession(req.sessionKey, req.userId), spec: taskSpec(req, rt.config.CLASPER_DEFAULT_TASK) };
}

export async function runAgent(rt: RuntimeContext, req: AgentRequest, callerSignal: AbortSignal, emit?: (event: AgentEvent) => void): Promise<AgentOutcome> {
  const { role, spec } = agentInput(rt, req);
  const backend = backendSettings(rt.config);
  const models = modelChain(rt.config, rt.config.LLM_MODEL_DEFAULT);
  const primary = models[0]!;

  const executionId = uuidv7();
  const caller = trace.getSpan(context.active());
  const root = rt.tracer.startSpan(`${GENAI_OPERATION.invokeAgent} ${role}`, {
    root: true,
    ...(caller ? { links: [{ context: caller.spanContext() }] } : {}),
    attributes: {
      [ATTR.operationName]: GENAI_OPERATION.invokeAgent,
      [ATTR.agentName]: role,
      [ATTR.providerName]: primary.provider,
      [ATTR.requestModel]: primary.id,
      [ATTR.executionId]: executionId,
      [ATTR.userId]: req.userId,
      [ATTR.conversationId]: req.sessionKey,
      [ATTR.inputMessage]: req.message,
      [ATTR.inputHistoryCount]: req.messages.length,
      [ATTR.source]: req.source,
    },
  });
  const traceId = traceIdOf(root);
  const parent = trace.setSpan(ROOT_CONTEXT, root);
  const signal = AbortSignal.any([callerSignal, AbortSignal.timeout(rt.config.CLASPER_EXECUTION_TIMEOUT_MS)]);
  const meter = emptyMeter();
  let reservation: { id: string; micros: number } | undefined;
  // The execution's closing entry (completed or failed), appended by governance with the settlement.
  let closing: AuditRecord | undefined;
  let costUnknown = false;
  let scope = { traceId, workspaceId: req.workspaceId || DEFAULT_WORKSPACE, executionId, environment: req.environment };

  try {
    // Workspace and prompt.
    const workspace = await rt.peers.workspace.resolveWorkspace({ workspaceId: req.workspaceId, environment: req.environment, includeContents: true });
    scope = { ...scope, workspaceId: workspace.workspaceId || scope.workspaceId, environment: workspace.environment || req.environment };
    const kickoff = req.metadata?.["kickoff_plan"] === true;
    const userText = kickoff ? `${metaString(req.metadata, "kickoff_note") ?? "Draft a concise plan based on the user's request."}\n\n${req.message}` : req.message;
    const prompt = assembleSystemPrompt(workspace, {
      role,
      now: new Date(),
      ...optional("overrideSystemPrompt", metaString(req.metadata, "system_prompt")),
      ...optional("timezone", metaString(req.metadata, "timezone")),
    });
    const skillVersions = Object.fromEntries(prompt.enabledSkills.map((s) => [s.name, s.version ?? ""]));
    root.setAttributes({
      [ATTR.workspaceId]: scope.workspaceId,
      [ATTR.environment]: scope.environment,
      [ATTR.workspaceVersion]: workspace.versionHash,
      [ATTR.skillVersions]: JSON.stringify(skillVersions),
    });
    const history = historyMessages(req.messages, primary);
    const estimated = estimateTokens(prompt.systemPrompt, ...req.messages.filter((m) => m.role !== MessageRole.SYSTEM).map((m) => m.content), userText);
    const warning = contextWarning(estimated, primary.model.contextWindow, rt.config.CLASPER_CONTEXT_WARNING_THRESHOLD);

    // Tools and the client every outbound call goes through, with the subject's current agent token.
    const subject = { tenantId: req.tenantId, workspaceId: scope.workspaceId, userId: req.userId, agentRole: role };
    const client: ControlPlaneClient = createControlPlaneClient({
      baseUrl: backend.url,
      timeoutMs: rt.config.CLASPER_CONTROL_PLANE_TIMEOUT_MS,
      token: () => rt.agentTokens(subject),
    });
    const allowed = new Set(allowedTools(prompt.enabledSkills));
    const tools = await offeredTools(allowed, () => client.listTools({ signal, traceId }));

    // Governance: RBAC, policy, risk, and the worst-case reservation before any provider call.
    const steps = tools.length > 0 ? rt.config.CLASPER_MAX_STEPS : 1;
    const estimate = worstCaseMicros(models.map((m) => m.model), estimated, rt.config.CLASPER_RESERVE_OUTPUT_TOKENS, steps);
    const gate = await rt.governance.preflight(
      {
        executionId,
        traceId,
        workspaceId: scope.workspaceId,
        environment: scope.environment,
        agentRole: role,
        permission: "agent:execute",
        model: primary.id,
        provider: primary.provider,
        estimatedCostMicros: BigInt(estimate),
        toolNames: tools.map((t) => t.name),
        skillVersions,
        temperature: rt.config.CLASPER_TEMPERATURE,
        requestedCapabilities: tools.length > 0 ? ["llm", "tools"] : ["llm"],
        maxSteps: steps,
        decisionToken: req.decisionToken,
      },
      parent,
      { type: AuditEventType.AGENT_EXECUTION_STARTED, scope, key: "started", data: { agent_role: role, source: req.source, model: primary.id } },
    );
    if (gate.effect === "deny") {
      root.setAttribute(ATTR.executionStatus, "blocked");
      throw preflightDenialError(gate.response);
    }
    if (gate.effect === "require_approval") {
      root.setAttributes({ [ATTR.executionStatus]: "blocked", [ATTR.decisionId]: gate.decisionId });
      return { status: "approval_required", traceId, executionId, decisionId: gate.decisionId, expiresAt: gate.expiresAt };
    }
    reservation = { id: gate.reservationId, micros: gate.reservedMicros };

    const tasks = new TaskResolver(client, spec, traceId, signal);
    // A stream announces its task up front; send creates it only when posting (heartbeats post nothing).
    let taskId = req.source === "stream" ? await tasks.ensure() : spec.taskId;
    emit?.({ type: "start", traceId, executionId, taskId });

    // The model/tool loop.
    const runner = createToolRunner({ tracer: rt.tracer, governance: rt.governance, client, tools, allowed, scope, userId: req.userId, agentRole: role, parent, signal });
    const piTools = tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters }) as unknown as Tool);
    const conversation: Message[] = [...history, { role: "user", content: userText, timestamp: Date.now() } satisfies UserMessage];
    let attempts = 0;
    let final: AssistantMessage | undefined;
    for (let step = 1; !final; step += 1) {
      let result;
      try {
        result = await rt.llm.call({
          models,
          context: { systemPrompt: prompt.systemPrompt, messages: conversation, ...(piTools.length > 0 ? { tools: piTools } : {}) },
          temperature: rt.config.CLASPER_TEMPERATURE,
          signal,
          parent,
          firstAttempt: attempts + 1,
          ...(emit ? { onTextDelta: (data: string) => emit({ type: "chunk", data }) } : {}),
        });
      } catch (err) {
        if (err instanceof LlmCallError) {
          addMeter(meter, err.meter);
          costUnknown ||= err.costUnknown;
        }
        throw err;
      }
      attempts += result.attempts;
      addMeter(meter, result.meter);
      conversation.push(result.message);
      const calls = result.message.content.filter((c) => c.type === "toolCall");
      if (calls.length === 0) {
        final = result.message;
        break;
      }
      const stepLimitReached = step >= rt.config.CLASPER_MAX_STEPS;
      for (const [index, call] of calls.entries()) {
        emit?.({ type: "tool_call", id: call.id, name: call.name, arguments: call.arguments });
        const outcome = await runner.run({ id: call.id, name: call.name, arguments: call.arguments ?? {}, step, index }, { stepLimitReached });
        emit?.({ type: "tool_result", id: call.id, name: call.name, success: outcome.success, result: outcome.result, error: outcome.error });
        conversation.push({ role: "toolResult", toolCallId: call.id, toolName: call.name, content: [{ type: "text", text: JSON.stringify(outcome.result) }], isError: !outcome.success, timestamp: Date.now() });
      }
      if (stepLimitReached) {
        throw clasperError(Code.FailedPrecondition, `step limit reached: the model still asked for tools after ${rt.config.CLASPER_MAX_STEPS} steps (CLASPER_MAX_STEPS)`, {
          reason: "step_limit_exceeded",
          httpStatus: 422,
        });
      }
    }

    const response = textOf(final);
    root.setAttribute(ATTR.outputMessage, response);
    // HEARTBEAT_OK is an acknowledgement: nothing is posted, nothing is delivered.
    if (response.trim() !== HEARTBEAT_OK) {
      taskId = await tasks.ensure();
      const post = (call: number) => ({ idempotencyKey: idempotencyKey(traceId, RUNTIME_STEP, call), traceId, signal });
      const message = await withRetry(() => client.postMessage({ task_id: taskId, content: response, actor_type: "agent", agent_role: role }, post(CALL.postReply)), { attempts: 2, signal });
      root.setAttribute(ATTR.messageId, message.id);
      if (kickoff) {
        const doc = await withRetry(
          () => client.createDocument({ task_id: taskId, title: metaString(req.metadata, "plan_title") ?? "Plan", content: response, doc_type: "plan" }, post(CALL.planDocument)),
          { attempts: 2, signal },
        );
        root.setAttribute(ATTR.documentId, doc.id);
      }
    }
    if (taskId) root.setAttribute(ATTR.taskId, taskId);
    const model = primary.id;
    if (req.webhook && response.trim() !== HEARTBEAT_OK) {
      fireWebhook(
        req.webhook,
        { event: "agent.completed", timestamp: new Date().toISOString(), task_id: taskId, trace_id: traceId, user_id: req.userId, role, response, usage: meterJson(meter), cost: { model, total_micros: meter.totalMicros, currency: "USD" }, metadata: req.metadata ?? {} },
        { timeoutMs: rt.config.CLASPER_WEBHOOK_TIMEOUT_MS, allowPrivate: rt.config.CLASPER_WEBHOOK_ALLOW_PRIVATE, logger: rt.logger },
      );
    }
    closing = { type: AuditEventType.AGENT_EXECUTION_COMPLETED, scope, key: "completed", data: { agent_role: role, cost_micros: meter.totalMicros, llm_calls: attempts, task_id: taskId } };
    return { status: "ok", taskId, traceId, executionId, response, meter, model, contextWarning: warning };
  } catch (err) {
    const error = executionError(err);
    const code = errorCodeOf(error);
    root.setAttribute(ATTR.errorType, code);
    root.setStatus({ code: SpanStatusCode.ERROR, message: error.rawMessage });
    if (reservation) closing = { type: AuditEventType.AGENT_EXECUTION_FAILED, scope, key: "failed", data: { error_code: code, cost_micros: meter.totalMicros } };
    throw error;
  } finally {
    try {
      if (reservation) await settleReservation(rt, reservation, meter, costUnknown, primary.id, closing);
    } finally {
      root.setAttributes({ [ATTR.costMicros]: meter.totalMicros });
      root.end();
    }
  }
}

/**
 * Actual cost; the whole reservation when a response broke off before reporting usage; nothing
 * ran → release. The execution's closing audit entry rides on the settlement (one call, not two);
 * released, or when the settlement fails, it is appended on its own (once: it is keyed).
 */
export async function settleReservation(
  rt: RuntimeContext,
  reservation: { id: string; micros: number },
  meter: Meter,
  costUnknown: boolean,
  model: string,
  closing: AuditRecord | undefined,
): Promise<void> {
  const nothingRan = !costUnknown && meter.totalMicros === 0 && meter.input === 0 && meter.output === 0;
  const failed = (err: unknown) => {
    // An unsettled reservation is released by governance's reconciler when it expires.
    rt.logger.error({ err, reservation_id: reservation.id }, "settling the budget reservation failed");
  };
  const alone = () => (closing ? rt.governance.audit(closing.type, closing.scope, closing.key, closing.data) : undefined);
  if (nothingRan) {
    await Promise.all([rt.governance.release(reservation.id, "nothing_ran").catch(failed), alone()]);
    return;
  }
  try {
    await rt.governance.settle(reservation.id, costUnknown ? Math.max(reservation.micros, meter.totalMicros) : meter.totalMicros, model, tokenUsageOf(meter), closing);
  } catch (err) {
    failed(err);
    await alone();
  }
}

function meterJson(m: Meter) {
  return {
    prompt_tokens: m.input,
    completion_tokens: m.output,
    total_tokens: m.input + m.output,
    cache_read_tokens: m.cacheRead,
    cache_write_tokens: m.cacheWrite,
    reasoning_tokens: m.reasoning,
  };
}
