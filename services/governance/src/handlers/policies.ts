import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { withTransaction } from "@clasper/db";
import { invalidField, notFound } from "@clasper/core";
import { principalOf, workspaceDenied, workspaceScope, type Principal } from "@clasper/auth";
import {
  DecisionEffect,
  DeletePolicyResponseSchema,
  DryRunPolicyResponseSchema,
  ListPoliciesResponseSchema,
  UpdatePolicyResponseSchema,
  UpsertPolicyResponseSchema,
  type DeletePolicyRequest,
  type DeletePolicyResponse,
  type DryRunPolicyRequest,
  type DryRunPolicyResponse,
  type ListPoliciesRequest,
  type ListPoliciesResponse,
  type UpdatePolicyRequest,
  type UpdatePolicyResponse,
  type UpsertPolicyRequest,
  type UpsertPolicyResponse,
} from "@clasper/proto";
import { conditionsValue, effects, policyContextOf, policyProto, riskLevels, subjectTypes, traceProto } from "../policy-convert.js";
import { evaluatePolicies } from "../policy-engine.js";
import { appendAudit, type AuditEventInput } from "../store/audit.js";
import { deletePolicy, findPolicy, listPolicies, updatePolicy, upsertPolicy, type PolicyOwner, type PolicyRow } from "../store/policies.js";
import type { GovernanceDatabase } from "../store/schema.js";

/** The audit record of a policy change: what changed, by whom, and the policy as it now stands. */
function policyChange(action: string, policy: PolicyRow, actor: string): AuditEventInput {
  return {
    eventType: "config_change",
    ...(policy.workspace_id ? { workspaceId: policy.workspace_id } : {}),
    actor,
    data: {
      action,
      policy_id: policy.policy_id,
      subject: { type: policy.subject_type, name: policy.subject_name },
      scope: { workspace_id: policy.workspace_id, environment: policy.environment },
      conditions: policy.conditions,
      effect: policy.effect,
      precedence: policy.precedence,
      enabled: policy.enabled,
      actor,
    },
  };
}

/** The policies a caller may change: its tenant's, only its workspace's when its token is bound to one. */
function ownerOf(principal: Principal): PolicyOwner {
  return { tenantId: principal.tenantId, workspaceId: principal.workspaceId };
}

/**
 * Why a workspace-bound caller found no policy of its own by that id: a tenant-wide policy, which
 * it can see but not change (403), or none it may see (404, also for another workspace's).
 */
async function missingPolicy(db: Kysely<GovernanceDatabase>, principal: Principal, policyId: string): Promise<Error> {
  if (principal.workspaceId !== undefined) {
    const existing = await findPolicy(db, principal.tenantId, policyId);
    if (existing && existing.workspace_id === null) {
      return workspaceDenied("a tenant-wide policy is changed with a token not bound to a workspace", "policy_id");
    }
  }
  return notFound("policy", "policy_id");
}

/**
 * Policy CRUD and dry-run (/ops/api/policies, /api/policy/dry-run) for the caller's tenant. A token
 * bound to a workspace sees that workspace's and the tenant-wide policies, and changes only that
 * workspace's.
 */
export class PolicyHandlers {
  constructor(private readonly db: Kysely<GovernanceDatabase>) {}

  async listPolicies(req: ListPoliciesRequest, ctx: HandlerContext): Promise<ListPoliciesResponse> {
    const principal = principalOf(ctx);
    const rows = await listPolicies(this.db, principal.tenantId, {
      workspaceId: workspaceScope(principal, req.workspaceId),
      environment: req.environment || undefined,
      enabled: req.enabled,
    });
    return create(ListPoliciesResponseSchema, { policies: rows.map(policyProto) });
  }

  async upsertPolicy(req: UpsertPolicyRequest, ctx: HandlerContext): Promise<UpsertPolicyResponse> {
    const principal = principalOf(ctx);
    const subjectType = req.subject && subjectTypes.value(req.subject.type);
    if (!subjectType) throw invalidField("subject.type", "is required");
    const effect = req.effect && effects.value(req.effect.decision);
    if (!effect) throw invalidField("effect.decision", "is required");
    const conditions = conditionsValue(req.conditions);
    if (conditions.min_cost_micros !== undefined && conditions.max_cost_micros !== undefined && BigInt(conditions.min_cost_micros) > BigInt(conditions.max_cost_micros)) {
      throw invalidField("conditions.min_cost_micros", "must not exceed conditions.max_cost_micros");
    }
    if (principal.workspaceId !== undefined && req.scope?.workspaceId !== principal.workspaceId) {
      throw workspaceDenied(`scope.workspace_id must be the token's workspace ${principal.workspaceId}`, "scope.workspace_id");
    }
    const { policy, created } = await withTransaction(this.db, async (trx) => {
      const result = await upsertPolicy(
        trx,
        ownerOf(principal),
        {
          policyId: req.policyId,
          workspaceId: req.scope?.workspaceId,
          environment: req.scope?.environment,
          subjectType,
          subjectName: req.subject?.name,
          conditions,
          effect,
          explanation: req.explanation,
          precedence: req.precedence,
          enabled: req.enabled ?? true,
        },
        principal.userId,
      );
      if (!result) throw workspaceDenied("policy_id names a policy outside the token's workspace", "policy_id");
      await appendAudit(trx, principal.tenantId, policyChange(result.created ? "policy_created" : "policy_updated", result.policy, principal.userId));
      return result;
    });
    return create(UpsertPolicyResponseSchema, { policy: policyProto(policy), created });
  }

  async updatePolicy(req: UpdatePolicyRequest, ctx: HandlerContext): Promise<UpdatePolicyResponse> {
    const principal = principalOf(ctx);
    if (req.enabled === undefined && req.precedence === undefined) throw invalidField("enabled", "enabled or precedence must be given");
    const policy = await withTransaction(this.db, async (trx) => {
      const row = await updatePolicy(trx, ownerOf(principal), req.policyId, { enabled: req.enabled, precedence: req.precedence }, principal.userId);
      if (!row) throw await missingPolicy(trx, principal, req.policyId);
      await appendAudit(trx, principal.tenantId, policyChange("policy_updated", row, principal.userId));
      return row;
    });
    return create(UpdatePolicyResponseSchema, { policy: policyProto(policy) });
  }

  async deletePolicy(req: DeletePolicyRequest, ctx: HandlerContext): Promise<DeletePolicyResponse> {
    const principal = principalOf(ctx);
    await withTransaction(this.db, async (trx) => {
      const row = await deletePolicy(trx, ownerOf(principal), req.policyId);
      if (!row) throw await missingPolicy(trx, principal, req.policyId);
      await appendAudit(trx, principal.tenantId, policyChange("policy_deleted", row, principal.userId));
    });
    return create(DeletePolicyResponseSchema, { policyId: req.policyId });
  }

  async dryRunPolicy(req: DryRunPolicyRequest, ctx: HandlerContext): Promise<DryRunPolicyResponse> {
    const principal = principalOf(ctx);
    const result = await evaluatePolicies(this.db, principal.tenantId, {
      ...policyContextOf(req),
      workspaceId: workspaceScope(principal, req.workspaceId),
      tool: req.tool || undefined,
      adapterId: req.adapterId || undefined,
      adapterRiskClass: riskLevels.value(req.adapterRiskClass),
      skillName: req.skillName || undefined,
      riskLevel: riskLevels.value(req.riskLevel),
      estimatedCostMicros: req.estimatedCostMicros,
    });
    return create(DryRunPolicyResponseSchema, {
      decision: effects.proto(result.decision, DecisionEffect.UNSPECIFIED),
      matchedPolicies: result.matchedPolicies,
      decisionTrace: traceProto(result.decisionTrace),
      explanation: result.explanation,
    });
  }
}
