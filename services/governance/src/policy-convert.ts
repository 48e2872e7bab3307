/**
 * Proto ↔ stored-value conversions of the policies area: enum numbers become the documented REST
 * strings in the database (so stored rows read like the API), and back.
 */
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Role } from "@clasper/auth";
import {
  DecisionAction,
  DecisionEffect,
  DecisionResolutionSchema,
  DecisionSchema,
  DecisionStatus,
  ExecutionContextSchema,
  GrantedScopeSchema,
  OverrideReasonCode,
  PolicyConditionsSchema,
  PolicyEffectSchema,
  PolicySchema,
  PolicyScopeSchema,
  PolicySubjectSchema,
  PolicySubjectType,
  PolicyTraceEntrySchema,
  PolicyTraceResult,
  ProvenanceSchema,
  ProvenanceSource,
  RiskLevel,
  SkillState,
  UserRole,
  type Decision,
  type ExecutionContext,
  type GrantedScope,
  type Policy,
  type PolicyConditions,
  type PolicyTraceEntry,
  type Provenance,
} from "@clasper/proto";
import type { PolicyContext } from "./policy-engine.js";
import type { DecisionRow } from "./store/decisions.js";
import { effectiveStatus } from "./store/decisions.js";
import type { PolicyRow } from "./store/policies.js";
import type {
  DecisionActionValue,
  EffectValue,
  ExecutionContextValue,
  GrantedScopeValue,
  OverrideReasonValue,
  PolicyConditionsValue,
  PolicyTraceValue,
  ProvenanceSourceValue,
  ProvenanceValue,
  RiskLevelValue,
  SkillStateValue,
  SubjectTypeValue,
} from "./store/schema-policies.js";

/** A two-way map between a proto enum (zero = unset) and its REST strings. */
function enumMap<E extends number, V extends string>(pairs: [E, V][]) {
  const to = new Map<E, V>(pairs);
  const from = new Map<V, E>(pairs.map(([e, v]) => [v, e]));
  return {
    /** undefined for the zero value (or an undefined number). */
    value: (e: E): V | undefined => to.get(e),
    proto: (v: V | null | undefined, zero: E): E => (v ? (from.get(v) ?? zero) : zero),
  };
}

export const riskLevels = enumMap<RiskLevel, RiskLevelValue>([
  [RiskLevel.LOW, "low"],
  [RiskLevel.MEDIUM, "medium"],
  [RiskLevel.HIGH, "high"],
  [RiskLevel.CRITICAL, "critical"],
]);
export const skillStates = enumMap<SkillState, SkillStateValue>([
  [SkillState.DRAFT, "draft"],
  [SkillState.TESTED, "tested"],
  [SkillState.APPROVED, "approved"],
  [SkillState.ACTIVE, "active"],
  [SkillState.DEPRECATED, "deprecated"],
]);
export const effects = enumMap<DecisionEffect, EffectValue>([
  [DecisionEffect.ALLOW, "allow"],
  [DecisionEffect.DENY, "deny"],
  [DecisionEffect.REQUIRE_APPROVAL, "require_approval"],
]);
export const subjectTypes = enumMap<PolicySubjectType, SubjectTypeValue>([
  [PolicySubjectType.ADAPTER, "adapter"],
  [PolicySubjectType.TOOL, "tool"],
  [PolicySubjectType.SKILL, "skill"],
  [PolicySubjectType.ENVIRONMENT, "environment"],
  [PolicySubjectType.RISK, "risk"],
  [PolicySubjectType.COST, "cost"],
  [PolicySubjectType.AGENT, "agent"],
]);
export const provenanceSources = enumMap<ProvenanceSource, ProvenanceSourceValue>([
  [ProvenanceSource.MARKETPLACE, "marketplace"],
  [ProvenanceSource.INTERNAL, "internal"],
  [ProvenanceSource.GIT, "git"],
  [ProvenanceSource.UNKNOWN, "unknown"],
]);
export const decisionActions = enumMap<DecisionAction, DecisionActionValue>([
  [DecisionAction.APPROVE, "approve"],
  [DecisionAction.DENY, "deny"],
  [DecisionAction.APPROVE_WITH_OVERRIDE, "approve_with_override"],
]);
export const overrideReasons = enumMap<OverrideReasonCode, OverrideReasonValue>([
  [OverrideReasonCode.INCIDENT_RESPONSE, "incident_response"],
  [OverrideReasonCode.HOTFIX, "hotfix"],
  [OverrideReasonCode.BUSINESS_DEADLINE, "business_deadline"],
  [OverrideReasonCode.DATA_CORRECTION, "data_correction"],
  [OverrideReasonCode.OTHER, "other"],
]);
export const userRoles = enumMap<UserRole, Role>([
  [UserRole.VIEWER, "viewer"],
  [UserRole.OPERATOR, "operator"],
  [UserRole.RELEASE_MANAGER, "release_manager"],
  [UserRole.ADMIN, "admin"],
]);
const decisionStatuses: Record<ReturnType<typeof effectiveStatus>, DecisionStatus> = {
  pending: DecisionStatus.PENDING,
  approved: DecisionStatus.APPROVED,
  denied: DecisionStatus.DENIED,
  expired: DecisionStatus.EXPIRED,
};
export function decisionStatusValue(status: DecisionStatus): ReturnType<typeof effectiveStatus> | undefined {
  return (Object.keys(decisionStatuses) as (keyof typeof decisionStatuses)[]).find((k) => decisionStatuses[k] === status);
}

/** Drops undefined and empty-string members so stored JSON holds only what was set. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== "")) as T;
}

export function contextValue(c: ExecutionContext | undefined): ExecutionContextValue | undefined {
  if (!c) return undefined;
  return compact<ExecutionContextValue>({
    external_network: c.externalNetwork,
    writes_files: c.writesFiles,
    elevated_privileges: c.elevatedPrivileges,
    package_manager: c.packageManager,
    targets: c.targets.length > 0 ? [...c.targets] : undefined,
  });
}

export function provenanceValue(p: Provenance | undefined): ProvenanceValue | undefined {
  if (!p) return undefined;
  return compact<ProvenanceValue>({ source: provenanceSources.value(p.source), publisher: p.publisher, artifact_hash: p.artifactHash });
}

export function conditionsValue(c: PolicyConditions | undefined): PolicyConditionsValue {
  if (!c) return {};
  const context = contextValue(c.context);
  const provenance = provenanceValue(c.provenance);
  return compact<PolicyConditionsValue>({
    adapter_risk_class: riskLevels.value(c.adapterRiskClass),
    tool: c.tool,
    skill_state: skillStates.value(c.skillState),
    risk_level: riskLevels.value(c.riskLevel),
    min_cost_micros: c.minCostMicros?.toString(),
    max_cost_micros: c.maxCostMicros?.toString(),
    workspace_id: c.workspaceId,
    capability: c.capability,
    intent: c.intent,
    context: context && Object.keys(context).length > 0 ? context : undefined,
    provenance: provenance && Object.keys(provenance).length > 0 ? provenance : undefined,
    agent_role: c.agentRole,
  });
}

function conditionsProto(c: PolicyConditionsValue): PolicyConditions {
  return create(PolicyConditionsSchema, {
    adapterRiskClass: riskLevels.proto(c.adapter_risk_class, RiskLevel.UNSPECIFIED),
    tool: c.tool ?? "",
    skillState: skillStates.proto(c.skill_state, SkillState.UNSPECIFIED),
    riskLevel: riskLevels.proto(c.risk_level, RiskLevel.UNSPECIFIED),
    ...(c.min_cost_micros !== undefined ? { minCostMicros: BigInt(c.min_cost_micros) } : {}),
    ...(c.max_cost_micros !== undefined ? { maxCostMicros: BigInt(c.max_cost_micros) } : {}),
    workspaceId: c.workspace_id ?? "",
    capability: c.capability ?? "",
    intent: c.intent ?? "",
    agentRole: c.agent_role ?? "",
    ...(c.context
      ? {
          context: create(ExecutionContextSchema, {
            ...(c.context.external_network !== undefined ? { externalNetwork: c.context.external_network } : {}),
            ...(c.context.writes_files !== undefined ? { writesFiles: c.context.writes_files } : {}),
            ...(c.context.elevated_privileges !== undefined ? { elevatedPrivileges: c.context.elevated_privileges } : {}),
            packageManager: c.context.package_manager ?? "",
            targets: c.context.targets ?? [],
          }),
        }
      : {}),
    ...(c.provenance
      ? {
          provenance: create(ProvenanceSchema, {
            source: provenanceSources.proto(c.provenance.source, ProvenanceSource.UNSPECIFIED),
            publisher: c.provenance.publisher ?? "",
            artifactHash: c.provenance.artifact_hash ?? "",
          }),
        }
      : {}),
  });
}

export function policyProto(row: PolicyRow): Policy {
  return create(PolicySchema, {
    policyId: row.policy_id,
    scope: create(PolicyScopeSchema, { workspaceId: row.workspace_id ?? "", environment: row.environment ?? "" }),
    subject: create(PolicySubjectSchema, {
      type: subjectTypes.proto(row.subject_type, PolicySubjectType.UNSPECIFIED),
      name: row.subject_name ?? "",
    }),
    conditions: conditionsProto(row.conditions),
    effect: create(PolicyEffectSchema, { decision: effects.proto(row.effect, DecisionEffect.UNSPECIFIED) }),
    explanation: row.explanation,
    precedence: row.precedence,
    enabled: row.enabled,
    createdAt: timestampFromDate(row.created_at),
    updatedAt: timestampFromDate(row.updated_at),
    updatedBy: row.updated_by,
  });
}

export function traceProto(trace: readonly PolicyTraceValue[]): PolicyTraceEntry[] {
  return trace.map((t) =>
    create(PolicyTraceEntrySchema, {
      policyId: t.policy_id,
      result: t.result === "matched" ? PolicyTraceResult.MATCHED : PolicyTraceResult.SKIPPED,
      decision: effects.proto(t.decision, DecisionEffect.UNSPECIFIED),
      explanation: t.explanation ?? "",
      reason: t.reason ?? "",
    }),
  );
}

export function grantedScopeProto(scope: GrantedScopeValue, expiresAt?: Date | null): GrantedScope {
  return create(GrantedScopeSchema, {
    capabilities: scope.capabilities,
    maxSteps: scope.max_steps,
    maxCostMicros: BigInt(scope.max_cost_micros),
    ...(expiresAt ? { expiresAt: timestampFromDate(expiresAt) } : {}),
  });
}

export function decisionProto(row: DecisionRow, now: Date = new Date()): Decision {
  return create(DecisionSchema, {
    decisionId: row.decision_id,
    status: decisionStatuses[effectiveStatus(row, now)],
    executionId: row.execution_id,
    traceId: row.trace_id ?? "",
    workspaceId: row.workspace_id ?? "",
    environment: row.environment ?? "",
    requiredRole: userRoles.proto(row.required_role as Role, UserRole.UNSPECIFIED),
    expiresAt: timestampFromDate(row.expires_at),
    ...(row.request_snapshot ? { requestSnapshot: row.request_snapshot as JsonObject } : {}),
    // An approved grant lasts as long as its token.
    grantedScope: grantedScopeProto(row.granted_scope, row.token_expires_at),
    ...(row.resolved_at
      ? {
          resolution: create(DecisionResolutionSchema, {
            action: decisionActions.proto(row.resolution_action, DecisionAction.UNSPECIFIED),
            actor: row.resolved_by ?? "",
            role: userRoles.proto(row.resolved_role as Role | null, UserRole.UNSPECIFIED),
            justification: row.resolution_justification ?? "",
            overrideReasonCode: overrideReasons.proto(row.override_reason_code, OverrideReasonCode.UNSPECIFIED),
            resolvedAt: timestampFromDate(row.resolved_at),
          }),
        }
      : {}),
    ...(row.token_used_at ? { decisionTokenUsedAt: timestampFromDate(row.token_used_at) } : {}),
    matchedPolicies: row.matched_policies,
    decisionTrace: traceProto(row.decision_trace),
    explanation: row.explanation,
    reasons: row.reasons,
    toolName: row.tool_name ?? "",
    requestedBy: row.requested_by,
    createdAt: timestampFromDate(row.created_at),
    updatedAt: timestampFromDate(row.updated_at),
  });
}

/** The evaluation context of a dry run, a preflight or a tool call: the fields they share. */
export function policyContextOf(req: {
  workspaceId: string;
  environment: string;
  skillState: SkillState;
  agentRole: string;
  requestedCapabilities?: readonly string[];
  intent?: string;
  context?: ExecutionContext | undefined;
  provenance?: Provenance | undefined;
}): PolicyContext {
  return {
    workspaceId: req.workspaceId || undefined,
    environment: req.environment || undefined,
    skillState: skillStates.value(req.skillState),
    agentRole: req.agentRole || undefined,
    requestedCapabilities: req.requestedCapabilities,
    intent: req.intent || undefined,
    context: contextValue(req.context),
    provenance: provenanceValue(req.provenance),
  };
}
