import { Code, type HandlerContext } from "@connectrpc/connect";
import { DEFAULT_WORKSPACE, principalOf } from "@clasper/auth";
import { context, ROOT_CONTEXT, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Context } from "@mariozechner/pi-ai";
import { clasperError, uuidv7 } from "@clasper/core";
import { AuditEventType } from "@clasper/proto";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import { executionError, errorCodeOf, settleReservation, traceIdOf } from "../execution/agent.js";
import { preflightDenialError, type AuditRecord } from "../governance.js";
import { LlmCallError, textOf } from "../llm/call.js";
import { modelChain } from "../llm/models.js";
import { addMeter, emptyMeter, worstCaseMicros, type Meter } from "../llm/usage.js";
import { estimateTokens } from "../prompt/index.js";
import type { RuntimeContext } from "../runtime-context.js";

export interface OneShotRequest {
  source: "llm_task" | "compact";
  /** The caller's workspace (its token's, else DEFAULT_WORKSPACE): where governance admits the run. */
  workspaceId: string;
  model: string;
  /** One or more model calls (llm-task repairs once) made through `call`. */
  run(call: (context: Context) => Promise<string>): Promise<unknown>;
  /** Prompt text used for the reservation's estimate. */
  estimateText: string;
  temperature: number;
  maxTokens?: number | undefined;
  /** Model calls the run may make (the reservation covers all of them). */
  calls: number;
}

export interface OneShotResult<T> {
  value: T;
  meter: Meter;
  traceId: string;
  model: string;
}

/** The workspace a one-shot run of this caller belongs to. */
export function oneShotWorkspace(ctx: HandlerContext): string {
  return principalOf(ctx).workspaceId ?? DEFAULT_WORKSPACE;
}

/**
 * A governed, traced execution without tools (POST /llm-task, /compact): the same preflight,
 * reservation, chat spans, settlement and audit as an agent turn.
 */
export async function runOneShot<T>(rt: RuntimeContext, req: OneShotRequest, signal: AbortSignal): Promise<OneShotResult<T>> {
  const models = modelChain(rt.config, req.model);
  const primary = models[0]!;
  const executionId = uuidv7();
  const caller = trace.getSpan(context.active());
  const root = rt.tracer.startSpan(`${GENAI_OPERATION.invokeAgent} ${req.source}`, {
    root: true,
    ...(caller ? { links: [{ context: caller.spanContext() }] } : {}),
    attributes: {
      [ATTR.operationName]: GENAI_OPERATION.invokeAgent,
      [ATTR.agentName]: req.source,
      [ATTR.providerName]: primary.provider,
      [ATTR.requestModel]: primary.id,
      [ATTR.executionId]: executionId,
      [ATTR.source]: req.source,
      [ATTR.workspaceId]: req.workspaceId,
    },
  });
  const traceId = traceIdOf(root);
  const parent = trace.setSpan(ROOT_CONTEXT, root);
  const meter = emptyMeter();
  const scope = { traceId, workspaceId: req.workspaceId, executionId };
  let reservation: { id: string; micros: number } | undefined;
  let costUnknown = false;
  // The closing audit entry (completed or failed), appended by governance with the settlement.
  let closing: AuditRecord | undefined;
  const execSignal = AbortSignal.any([signal, AbortSignal.timeout(rt.config.CLASPER_EXECUTION_TIMEOUT_MS)]);
  try {
    const estimate = worstCaseMicros(models.map((m) => m.model), estimateTokens(req.estimateText), req.maxTokens ?? rt.config.CLASPER_RESERVE_OUTPUT_TOKENS, req.calls);
    const gate = await rt.governance.preflight(
      { executionId, traceId, workspaceId: req.workspaceId, permission: "agent:execute", model: primary.id, provider: primary.provider, estimatedCostMicros: BigInt(estimate), requestedCapabilities: ["llm"], maxSteps: req.calls, temperature: req.temperature },
      parent,
      { type: AuditEventType.AGENT_EXECUTION_STARTED, scope, key: "started", data: { source: req.source, model: primary.id } },
    );
    if (gate.effect === "deny") {
      root.setAttribute(ATTR.executionStatus, "blocked");
      throw preflightDenialError(gate.response);
    }
    if (gate.effect === "require_approval") {
      root.setAttribute(ATTR.executionStatus, "blocked");
      throw clasperError(Code.FailedPrecondition, "approval required before this call can run", { reason: "approval_required", httpStatus: 409 });
    }
    reservation = { id: gate.reservationId, micros: gate.reservedMicros };
    let attempts = 0;
    const value = (await req.run(async (ctx) => {
      try {
        const result = await rt.llm.call({ models, context: ctx, temperature: req.temperature, signal: execSignal, parent, firstAttempt: attempts + 1, ...(req.maxTokens ? { maxTokens: req.maxTokens } : {}) });
        attempts += result.attempts;
        addMeter(meter, result.meter);
        return textOf(result.message);
      } catch (err) {
        if (err instanceof LlmCallError) {
          addMeter(meter, err.meter);
          costUnknown ||= err.costUnknown;
        }
        throw err;
      }
    })) as T;
    closing = { type: AuditEventType.AGENT_EXECUTION_COMPLETED, scope, key: "completed", data: { source: req.source, cost_micros: meter.totalMicros } };
    return { value, meter, traceId, model: primary.id };
  } catch (err) {
    const error = executionError(err);
    root.setAttribute(ATTR.errorType, errorCodeOf(error));
    root.setStatus({ code: SpanStatusCode.ERROR, message: error.rawMessage });
    if (reservation) closing = { type: AuditEventType.AGENT_EXECUTION_FAILED, scope, key: "failed", data: { source: req.source, error_code: errorCodeOf(error) } };
    throw error;
  } finally {
    if (reservation) await settleReservation(rt, reservation, meter, costUnknown, primary.id, closing);
    root.setAttribute(ATTR.costMicros, meter.totalMicros);
    root.end();
  }
}
