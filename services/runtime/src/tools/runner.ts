import { SpanStatusCode, type Context as OtelContext, type Tracer } from "@opentelemetry/api";
import { Ajv, type ValidateFunction } from "ajv";
import type { JsonObject } from "@bufbuild/protobuf";
import { ControlPlaneError, idempotencyKey, withRetry, type ControlPlaneClient } from "@clasper/control-plane";
import { AuditEventType } from "@clasper/proto";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import type { AuditScope, Governance } from "../governance.js";
import type { ToolDefinition } from "./catalog.js";

/** What the model is told about a tool call (and what stream tool_result events carry). */
export interface ToolOutcome {
  readonly success: boolean;
  readonly permitted: boolean;
  readonly result: unknown;
  readonly error?: string;
}

export interface ToolCallRequest {
  readonly id: string;
  readonly name: string;
  readonly arguments: Record<string, unknown>;
  /** 1-based model step that asked for it, and its index among that step's calls. */
  readonly step: number;
  readonly index: number;
}

export interface ToolRunnerInit {
  readonly tracer: Tracer;
  readonly governance: Governance;
  readonly client: ControlPlaneClient;
  readonly tools: readonly ToolDefinition[];
  /** Names the enabled skills' `permissions.tools` allow. */
  readonly allowed: ReadonlySet<string>;
  readonly scope: AuditScope & { environment: string };
  readonly userId: string;
  readonly agentRole: string;
  readonly parent: OtelContext;
  readonly signal: AbortSignal;
}

const ajv = new Ajv({ allErrors: false, strict: false });
const validators = new Map<string, ValidateFunction>();

function validatorFor(tool: ToolDefinition): ValidateFunction | undefined {
  const key = `${tool.builtin ? "b" : "x"}:${tool.name}:${JSON.stringify(tool.parameters)}`;
  let validate = validators.get(key);
  if (!validate) {
    try {
      validate = ajv.compile(tool.parameters);
    } catch {
      // A backend schema ajv cannot compile is the backend's to enforce.
      return undefined;
    }
    if (validators.size > 1000) validators.clear();
    validators.set(key, validate);
  }
  return validate;
}

const USER_KEYS = ["user_id", "userId", "tenant_id", "tenantId", "owner_id"];

/** Arguments naming a different user than the one the agent acts for. */
function foreignUser(args: Record<string, unknown>, userId: string): string | undefined {
  for (const key of USER_KEYS) {
    const value = args[key];
    if (value !== undefined && value !== userId) return `${key} ${JSON.stringify(value)} is not the user this agent acts for`;
  }
  return undefined;
}

/** A refusal the model sees as an error result; nothing left the process. */
function refusal(reason: string, message: string): ToolOutcome & { reason: string } {
  return { success: false, permitted: false, result: { error: message, code: reason }, error: message, reason };
}

/**
 * Runs the tool calls of one execution. Every check that can refuse a call (skill allowlist,
 * arguments, another user's data, the step limit, governance policy) runs before any request
 * leaves; a refusal is an `execute_tool` span with `clasper.tool.permitted = false`, a
 * `tool_permission_denied` audit entry, and an error result for the model.
 */
export function createToolRunner(init: ToolRunnerInit) {
  const byName = new Map(init.tools.map((t) => [t.name, t]));

  async function check(call: ToolCallRequest, tool: ToolDefinition | undefined, stepLimitReached: boolean) {
    if (stepLimitReached) return refusal("step_limit", "step limit reached; no further tool calls are made");
    if (!init.allowed.has(call.name)) return refusal("not_allowed", `tool ${call.name} is not in the enabled skills' permissions.tools allowlist`);
    if (!tool) return refusal("unknown_tool", `tool ${call.name} is not available`);
    const foreign = foreignUser(call.arguments, init.userId);
    if (foreign) return refusal("foreign_user", foreign);
    const validate = validatorFor(tool);
    if (validate && !validate(call.arguments)) {
      const first = validate.errors?.[0];
      return refusal("invalid_arguments", `invalid arguments: ${first?.instancePath || "(root)"} ${first?.message ?? "is invalid"}`);
    }
    return undefined;
  }

  return {
    async run(call: ToolCallRequest, limits: { stepLimitReached: boolean }): Promise<ToolOutcome> {
      const tool = byName.get(call.name);
      const key = idempotencyKey(init.scope.traceId, call.step, call.index);
      const span = init.tracer.startSpan(
        `${GENAI_OPERATION.executeTool} ${call.name}`,
        {
          attributes: {
            [ATTR.operationName]: GENAI_OPERATION.executeTool,
            [ATTR.toolName]: call.name,
            [ATTR.toolCallId]: call.id,
            [ATTR.toolCallArguments]: JSON.stringify(call.arguments),
            [ATTR.toolIdempotencyKey]: key,
          },
        },
        init.parent,
      );
      try {
        let refused = await check(call, tool, limits.stepLimitReached);
        if (!refused) {
          const verdict = await init.governance.authorizeTool(
            { ...init.scope, toolName: call.name, agentRole: init.agentRole, snapshot: { tool: call.name, argument_names: Object.keys(call.arguments) } as JsonObject },
            init.parent,
          );
          if (verdict.effect !== "allow") refused = refusal(verdict.reason || "policy_denied", `tool ${call.name} refused by policy (${verdict.reason || verdict.effect})`);
        }
        if (refused) {
          span.setAttributes({ [ATTR.toolPermitted]: false, [ATTR.toolPermissionReason]: refused.reason, [ATTR.toolCallResult]: JSON.stringify(refused.result) });
          await init.governance.audit(AuditEventType.TOOL_PERMISSION_DENIED, init.scope, `tool:${call.step}:${call.index}:denied`, {
            tool_name: call.name,
            reason: refused.reason,
            step: call.step,
          });
          return refused;
        }
        span.setAttribute(ATTR.toolPermitted, true);
        const options = { idempotencyKey: key, traceId: init.scope.traceId, signal: init.signal };
        // The same key on the retry, so a create that committed before timing out is not repeated.
        const result = await withRetry(() => tool!.run(init.client, call.arguments, { agentRole: init.agentRole, options }), { attempts: 2, signal: init.signal });
        span.setAttribute(ATTR.toolCallResult, JSON.stringify(result ?? null));
        return { success: true, permitted: true, result: result ?? null };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        span.setAttribute(ATTR.errorType, err instanceof ControlPlaneError ? "tool_error" : "internal");
        span.setStatus({ code: SpanStatusCode.ERROR, message });
        if (!(err instanceof ControlPlaneError)) throw err;
        return { success: false, permitted: true, result: { error: message, code: err.code }, error: message };
      } finally {
        span.end();
      }
    },
  };
}

export type ToolRunner = ReturnType<typeof createToolRunner>;
