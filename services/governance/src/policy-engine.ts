import type { Kysely, Transaction } from "kysely";
import { listCandidatePolicies, type PolicyRow } from "./store/policies.js";
import type { GovernanceDatabase } from "./store/schema.js";
import type {
  EffectValue,
  ExecutionContextValue,
  PolicyConditionsValue,
  PolicyTraceValue,
  ProvenanceValue,
  RiskLevelValue,
  SkillStateValue,
  SubjectTypeValue,
} from "./store/schema-policies.js";

/** What a policy is evaluated against. Absent values never match a condition that names them. */
export interface PolicyContext {
  workspaceId?: string | undefined;
  environment?: string | undefined;
  tool?: string | undefined;
  adapterId?: string | undefined;
  adapterRiskClass?: RiskLevelValue | undefined;
  skillName?: string | undefined;
  skillState?: SkillStateValue | undefined;
  riskLevel?: RiskLevelValue | undefined;
  estimatedCostMicros?: bigint | undefined;
  requestedCapabilities?: readonly string[] | undefined;
  intent?: string | undefined;
  context?: ExecutionContextValue | undefined;
  provenance?: ProvenanceValue | undefined;
  agentRole?: string | undefined;
}

export interface PolicyEvaluation {
  /** The winner's effect; allow when nothing matched. */
  decision: EffectValue;
  /** Every matching policy, in evaluation order. */
  matchedPolicies: string[];
  /** Every candidate, matched or skipped (with the first reason it was skipped). */
  decisionTrace: PolicyTraceValue[];
  /** The winner's explanation, or "No matching policy". */
  explanation: string;
  /** The winning policy, when one matched. */
  winner?: PolicyRow;
}

export const NO_MATCH_EXPLANATION = "No matching policy";

const RESTRICTIVENESS: Record<EffectValue, number> = { allow: 1, require_approval: 2, deny: 3 };

/** The context value a subject type is about (cost is about every context). */
const SUBJECT_VALUE: Record<SubjectTypeValue, (ctx: PolicyContext) => string | undefined> = {
  adapter: (ctx) => ctx.adapterId,
  tool: (ctx) => ctx.tool,
  // The original compared the skill subject with the skill *state*; it names the skill.
  skill: (ctx) => ctx.skillName,
  environment: (ctx) => ctx.environment,
  risk: (ctx) => ctx.riskLevel,
  cost: () => "*",
  agent: (ctx) => ctx.agentRole,
};

/**
 * Scope specificity: a policy scoped to a workspace and an environment is more specific than one
 * scoped to a workspace (a workspace has several environments), which is more specific than one
 * scoped to an environment name (shared across workspaces), which beats an unscoped one.
 */
export function specificity(policy: Pick<PolicyRow, "workspace_id" | "environment">): number {
  return 1 + (policy.workspace_id ? 2 : 0) + (policy.environment ? 1 : 0);
}

/** Evaluates the tenant's enabled policies that are in the context's scope. */
export async function evaluatePolicies(
  db: Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>,
  tenantId: string,
  ctx: PolicyContext,
): Promise<PolicyEvaluation> {
  const candidates = await listCandidatePolicies(db, tenantId, { workspaceId: ctx.workspaceId, environment: ctx.environment });
  return evaluate(candidates, ctx);
}

/**
 * Pure evaluation over candidates given in evaluation order (precedence desc, updated desc).
 * Winner: highest precedence, then the most specific scope, then the most restrictive effect
 * (deny > require_approval > allow), then evaluation order.
 */
export function evaluate(candidates: readonly PolicyRow[], ctx: PolicyContext): PolicyEvaluation {
  const decisionTrace: PolicyTraceValue[] = [];
  const matched: PolicyRow[] = [];
  for (const policy of candidates) {
    if (!policy.enabled) continue;
    const reason = mismatch(policy, ctx);
    if (reason === undefined) {
      matched.push(policy);
      decisionTrace.push({ policy_id: policy.policy_id, result: "matched", decision: policy.effect, explanation: policy.explanation });
    } else {
      decisionTrace.push({ policy_id: policy.policy_id, result: "skipped", reason });
    }
  }
  const winner = [...matched].sort(
    (a, b) =>
      b.precedence - a.precedence || specificity(b) - specificity(a) || RESTRICTIVENESS[b.effect] - RESTRICTIVENESS[a.effect],
  )[0];
  if (!winner) return { decision: "allow", matchedPolicies: [], decisionTrace, explanation: NO_MATCH_EXPLANATION };
  return {
    decision: winner.effect,
    matchedPolicies: matched.map((p) => p.policy_id),
    decisionTrace,
    explanation: winner.explanation || `Policy ${winner.policy_id}: ${winner.effect}`,
    winner,
  };
}

/** Why the policy does not match the context (the first failing check), or undefined if it does. */
export function mismatch(policy: PolicyRow, ctx: PolicyContext): string | undefined {
  if (policy.workspace_id && policy.workspace_id !== ctx.workspaceId) return "scope.workspace_id mismatch";
  if (policy.environment && policy.environment !== ctx.environment) return "scope.environment mismatch";
  const subject = SUBJECT_VALUE[policy.subject_type](ctx);
  if (subject === undefined || subject === "") return `subject.type ${policy.subject_type} not in context`;
  if (policy.subject_name && policy.subject_type !== "cost" && policy.subject_name !== subject) return "subject.name mismatch";
  return conditionMismatch(policy.conditions, ctx);
}

function conditionMismatch(c: PolicyConditionsValue, ctx: PolicyContext): string | undefined {
  const equal: [keyof PolicyConditionsValue, unknown, unknown][] = [
    ["adapter_risk_class", c.adapter_risk_class, ctx.adapterRiskClass],
    ["tool", c.tool, ctx.tool],
    ["skill_state", c.skill_state, ctx.skillState],
    ["risk_level", c.risk_level, ctx.riskLevel],
    ["workspace_id", c.workspace_id, ctx.workspaceId],
    ["intent", c.intent, ctx.intent],
    ["agent_role", c.agent_role, ctx.agentRole],
  ];
  for (const [name, want, have] of equal) {
    if (want !== undefined && want !== have) return `conditions.${name} mismatch`;
  }
  const cost = ctx.estimatedCostMicros;
  if (c.min_cost_micros !== undefined && (cost === undefined || cost < BigInt(c.min_cost_micros))) return "conditions.min_cost_micros mismatch";
  if (c.max_cost_micros !== undefined && (cost === undefined || cost > BigInt(c.max_cost_micros))) return "conditions.max_cost_micros mismatch";
  if (c.capability !== undefined && !(ctx.requestedCapabilities ?? []).includes(c.capability)) return "conditions.capability mismatch";
  if (c.context) {
    const have = ctx.context ?? {};
    for (const key of ["external_network", "writes_files", "elevated_privileges", "package_manager"] as const) {
      if (c.context[key] !== undefined && c.context[key] !== have[key]) return `conditions.context.${key} mismatch`;
    }
    // Every listed target must be among the context's targets.
    if (c.context.targets?.some((t) => !(have.targets ?? []).includes(t))) return "conditions.context.targets mismatch";
  }
  if (c.provenance) {
    const have = ctx.provenance ?? {};
    for (const key of ["source", "publisher", "artifact_hash"] as const) {
      if (c.provenance[key] !== undefined && c.provenance[key] !== have[key]) return `conditions.provenance.${key} mismatch`;
    }
  }
  return undefined;
}
