import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { hasPermission, principalOf } from "@clasper/auth";
import {
  AuthorizeToolCallResponseSchema,
  DecisionEffect,
  PreflightReasonCode,
  PreflightReasonSchema,
  type AuthorizeToolCallRequest,
  type AuthorizeToolCallResponse,
  type PreflightRequest,
  type PreflightResponse,
} from "@clasper/proto";
import { openDecision } from "../decisions.js";
import { effects, policyContextOf, traceProto } from "../policy-convert.js";
import { evaluatePolicies } from "../policy-engine.js";
import { inTokenWorkspace, preflight, reasonName, type PreflightDeps } from "../preflight.js";
import { appendAudit } from "../store/audit.js";
import type { GovernanceDatabase } from "../store/schema.js";

/** Internal RPCs the runtime calls: Preflight before an execution, AuthorizeToolCall per tool call. */
export class PreflightHandlers {
  private readonly db: Kysely<GovernanceDatabase>;

  constructor(private readonly deps: PreflightDeps) {
    this.db = deps.db;
  }

  async preflight(req: PreflightRequest, ctx: HandlerContext): Promise<PreflightResponse> {
    return preflight(this.deps, principalOf(ctx), req);
  }

  async authorizeToolCall(request: AuthorizeToolCallRequest, ctx: HandlerContext): Promise<AuthorizeToolCallResponse> {
    const principal = principalOf(ctx);
    const req = inTokenWorkspace(principal, request);
    const refuse = (code: PreflightReasonCode, message: string, policyId = "") => create(PreflightReasonSchema, { code, message, policyId });
    // Tool calls happen inside executions, which agent:execute (send) or eval:run (evals) admitted.
    const mayExecute = hasPermission(principal, "agent:execute") || hasPermission(principal, "eval:run");
    const workspaceOk = !principal.workspaceId || principal.workspaceId === req.workspaceId;
    if (!mayExecute || !workspaceOk) {
      const reasons = [refuse(PreflightReasonCode.RBAC_DENIED, mayExecute ? "workspace not accessible with this token" : `role ${principal.role} may not run executions`)];
      await this.auditToolDenied(principal.tenantId, principal.userId, req, reasons.map((r) => reasonName(r.code)), "");
      return create(AuthorizeToolCallResponseSchema, { decision: DecisionEffect.DENY, reasons, explanation: reasons[0]!.message });
    }
    const evaluation = await evaluatePolicies(this.db, principal.tenantId, {
      ...policyContextOf(req),
      tool: req.toolName,
      skillName: req.skillName || undefined,
    });
    const policyId = evaluation.winner?.policy_id ?? "";
    const common = {
      decision: effects.proto(evaluation.decision, DecisionEffect.UNSPECIFIED),
      matchedPolicies: evaluation.matchedPolicies,
      decisionTrace: traceProto(evaluation.decisionTrace),
      explanation: evaluation.explanation,
    };
    if (evaluation.decision === "deny") {
      await this.auditToolDenied(principal.tenantId, principal.userId, req, ["policy_denied"], policyId);
      return create(AuthorizeToolCallResponseSchema, { ...common, reasons: [refuse(PreflightReasonCode.POLICY_DENIED, evaluation.explanation, policyId)] });
    }
    if (evaluation.decision === "require_approval") {
      const decision = await openDecision(
        this.db,
        principal,
        {
          executionId: req.executionId,
          traceId: req.traceId,
          workspaceId: req.workspaceId,
          environment: req.environment,
          toolName: req.toolName,
          requestSnapshot: { ...(req.requestSnapshot ?? {}), tool_name: req.toolName, skill_name: req.skillName },
          grantedScope: { capabilities: [`tool:${req.toolName}`], max_steps: 1, max_cost_micros: "0" },
          matchedPolicies: evaluation.matchedPolicies,
          decisionTrace: evaluation.decisionTrace,
          explanation: evaluation.explanation,
          reasons: ["policy_requires_approval"],
        },
        this.deps.decisionTtlSeconds,
      );
      return create(AuthorizeToolCallResponseSchema, {
        ...common,
        decisionId: decision.decision_id,
        reasons: [refuse(PreflightReasonCode.POLICY_REQUIRES_APPROVAL, evaluation.explanation, policyId)],
      });
    }
    return create(AuthorizeToolCallResponseSchema, common);
  }

  private async auditToolDenied(tenantId: string, actor: string, req: AuthorizeToolCallRequest, reasons: string[], policyId: string): Promise<void> {
    await appendAudit(this.db, tenantId, {
      eventType: "tool_authorization_denied",
      ...(req.workspaceId ? { workspaceId: req.workspaceId } : {}),
      ...(req.traceId ? { traceId: req.traceId } : {}),
      actor,
      data: { execution_id: req.executionId, tool_name: req.toolName, skill_name: req.skillName || null, reasons, policy_id: policyId || null },
    });
  }
}
