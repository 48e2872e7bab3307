import type { ColumnType, Generated } from "kysely";

/** Tables of the policies area of the governance schema (policies, approval decisions). */
export interface PolicyTables {
  policies: PoliciesTable;
  decisions: DecisionsTable;
}

export type EffectValue = "allow" | "deny" | "require_approval";
export type SubjectTypeValue = "adapter" | "tool" | "skill" | "environment" | "risk" | "cost" | "agent";
export type RiskLevelValue = "low" | "medium" | "high" | "critical";
export type SkillStateValue = "draft" | "tested" | "approved" | "active" | "deprecated";
export type ProvenanceSourceValue = "marketplace" | "internal" | "git" | "unknown";
export type DecisionStatusValue = "pending" | "approved" | "denied";
export type DecisionActionValue = "approve" | "deny" | "approve_with_override";
export type OverrideReasonValue = "incident_response" | "hotfix" | "business_deadline" | "data_correction" | "other";

/** Side-effect signals; in a condition, only the fields present are compared. */
export interface ExecutionContextValue {
  external_network?: boolean;
  writes_files?: boolean;
  elevated_privileges?: boolean;
  package_manager?: string;
  targets?: string[];
}

export interface ProvenanceValue {
  source?: ProvenanceSourceValue;
  publisher?: string;
  artifact_hash?: string;
}

/**
 * A policy's conditions as stored (jsonb): only set conditions are present. Costs are decimal
 * strings of micro-dollars, because JSON numbers lose precision above 2^53.
 */
export interface PolicyConditionsValue {
  adapter_risk_class?: RiskLevelValue;
  tool?: string;
  skill_state?: SkillStateValue;
  risk_level?: RiskLevelValue;
  min_cost_micros?: string;
  max_cost_micros?: string;
  workspace_id?: string;
  capability?: string;
  intent?: string;
  context?: ExecutionContextValue;
  provenance?: ProvenanceValue;
  agent_role?: string;
}

export interface PoliciesTable {
  tenant_id: string;
  policy_id: string;
  workspace_id: string | null;
  environment: string | null;
  subject_type: SubjectTypeValue;
  subject_name: string | null;
  conditions: ColumnType<PolicyConditionsValue, string, string>;
  effect: EffectValue;
  explanation: string;
  precedence: number;
  enabled: boolean;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  updated_by: string;
}

/** One candidate's fate in an evaluation, as stored on a decision. */
export interface PolicyTraceValue {
  policy_id: string;
  result: "matched" | "skipped";
  decision?: EffectValue;
  explanation?: string;
  reason?: string;
}

/** What an approved execution may do (max_cost_micros as a decimal string). */
export interface GrantedScopeValue {
  capabilities: string[];
  max_steps: number;
  max_cost_micros: string;
}

export interface DecisionsTable {
  tenant_id: string;
  decision_id: string;
  status: DecisionStatusValue;
  execution_id: string;
  trace_id: string | null;
  workspace_id: string | null;
  environment: string | null;
  tool_name: string | null;
  required_role: string;
  expires_at: Date;
  request_snapshot: ColumnType<Record<string, unknown> | null, string | null, string | null>;
  granted_scope: ColumnType<GrantedScopeValue, string, string>;
  matched_policies: ColumnType<string[], string, string>;
  decision_trace: ColumnType<PolicyTraceValue[], string, string>;
  explanation: string;
  reasons: ColumnType<string[], string, string>;
  requested_by: string;
  resolution_action: DecisionActionValue | null;
  resolved_by: string | null;
  resolved_role: string | null;
  resolution_justification: string | null;
  override_reason_code: OverrideReasonValue | null;
  resolved_at: Date | null;
  token_jti: string | null;
  token_issued_at: Date | null;
  token_expires_at: Date | null;
  token_used_at: Date | null;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}
