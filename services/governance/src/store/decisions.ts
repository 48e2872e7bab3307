import type { Kysely, Selectable, Transaction } from "kysely";
import { uuidv7 } from "@clasper/core";
import type { GovernanceDatabase } from "./schema.js";
import type {
  DecisionActionValue,
  DecisionsTable,
  GrantedScopeValue,
  OverrideReasonValue,
  PolicyTraceValue,
} from "./schema-policies.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export type DecisionRow = Selectable<DecisionsTable>;
/** Stored status plus "expired": a pending decision past its expires_at. */
export type EffectiveStatus = DecisionRow["status"] | "expired";

export function effectiveStatus(row: Pick<DecisionRow, "status" | "expires_at">, now: Date = new Date()): EffectiveStatus {
  return row.status === "pending" && row.expires_at.getTime() <= now.getTime() ? "expired" : row.status;
}

export interface NewDecision {
  executionId: string;
  traceId?: string | undefined;
  workspaceId?: string | undefined;
  environment?: string | undefined;
  toolName?: string | undefined;
  requiredRole: string;
  expiresAt: Date;
  requestSnapshot?: Record<string, unknown> | undefined;
  grantedScope: GrantedScopeValue;
  matchedPolicies: string[];
  decisionTrace: PolicyTraceValue[];
  explanation: string;
  reasons: string[];
  requestedBy: string;
}

export async function createDecision(db: Executor, tenantId: string, input: NewDecision): Promise<DecisionRow> {
  return db
    .insertInto("decisions")
    .values({
      tenant_id: tenantId,
      decision_id: uuidv7(),
      status: "pending",
      execution_id: input.executionId,
      trace_id: input.traceId || null,
      workspace_id: input.workspaceId || null,
      environment: input.environment || null,
      tool_name: input.toolName || null,
      required_role: input.requiredRole,
      expires_at: input.expiresAt,
      request_snapshot: input.requestSnapshot ? JSON.stringify(input.requestSnapshot) : null,
      granted_scope: JSON.stringify(input.grantedScope),
      matched_policies: JSON.stringify(input.matchedPolicies),
      decision_trace: JSON.stringify(input.decisionTrace),
      explanation: input.explanation,
      reasons: JSON.stringify(input.reasons),
      requested_by: input.requestedBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findDecision(db: Executor, tenantId: string, decisionId: string): Promise<DecisionRow | undefined> {
  return db.selectFrom("decisions").selectAll().where("tenant_id", "=", tenantId).where("decision_id", "=", decisionId).executeTakeFirst();
}

/**
 * The still-pending decision of an execution (and tool), so a retried preflight or tool call
 * waits on the decision it already created instead of piling up new ones.
 */
export async function findOpenDecision(
  db: Executor,
  tenantId: string,
  executionId: string,
  toolName: string | undefined,
  now: Date = new Date(),
): Promise<DecisionRow | undefined> {
  let query = db
    .selectFrom("decisions")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("execution_id", "=", executionId)
    .where("status", "=", "pending")
    .where("expires_at", ">", now);
  query = toolName ? query.where("tool_name", "=", toolName) : query.where("tool_name", "is", null);
  return query.orderBy("decision_id", "desc").executeTakeFirst();
}

export interface DecisionListFilter {
  status: EffectiveStatus;
  workspaceId?: string | undefined;
  limit: number;
  /** The last decision id of the previous page. */
  after?: string | undefined;
}

/**
 * One page of decisions. Pending ones oldest first (the queue an approver works through), the
 * others newest first; keyset on the UUIDv7 id, which orders like creation time.
 */
export async function listDecisions(
  db: Executor,
  tenantId: string,
  filter: DecisionListFilter,
  now: Date = new Date(),
): Promise<{ decisions: DecisionRow[]; hasMore: boolean }> {
  const ascending = filter.status === "pending";
  let query = db.selectFrom("decisions").selectAll().where("tenant_id", "=", tenantId);
  if (filter.status === "pending") query = query.where("status", "=", "pending").where("expires_at", ">", now);
  else if (filter.status === "expired") query = query.where("status", "=", "pending").where("expires_at", "<=", now);
  else query = query.where("status", "=", filter.status);
  if (filter.workspaceId) query = query.where("workspace_id", "=", filter.workspaceId);
  if (filter.after) query = query.where("decision_id", ascending ? ">" : "<", filter.after);
  const rows = await query
    .orderBy("decision_id", ascending ? "asc" : "desc")
    .limit(filter.limit + 1)
    .execute();
  return { decisions: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
}

export interface Resolution {
  action: DecisionActionValue;
  actor: string;
  role: string;
  justification: string;
  overrideReasonCode?: OverrideReasonValue | undefined;
  /** The token minted for an approval (absent for a denial). */
  token?: { jti: string; issuedAt: Date; expiresAt: Date } | undefined;
}

/**
 * Resolves a decision that is pending and not expired, in one conditional UPDATE: of two
 * concurrent resolvers exactly one succeeds. Undefined when nothing was pending (the caller
 * reads the row to say why).
 */
export async function resolveDecision(
  db: Executor,
  tenantId: string,
  decisionId: string,
  resolution: Resolution,
  now: Date = new Date(),
): Promise<DecisionRow | undefined> {
  return db
    .updateTable("decisions")
    .set({
      status: resolution.action === "deny" ? "denied" : "approved",
      resolution_action: resolution.action,
      resolved_by: resolution.actor,
      resolved_role: resolution.role,
      resolution_justification: resolution.justification,
      override_reason_code: resolution.overrideReasonCode ?? null,
      resolved_at: now,
      token_jti: resolution.token?.jti ?? null,
      token_issued_at: resolution.token?.issuedAt ?? null,
      token_expires_at: resolution.token?.expiresAt ?? null,
      updated_at: now,
    })
    .where("tenant_id", "=", tenantId)
    .where("decision_id", "=", decisionId)
    .where("status", "=", "pending")
    .where("expires_at", ">", now)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Marks an approved decision's token used, in one conditional UPDATE (approved, this jti, not yet
 * used, not expired): of any number of concurrent consumers exactly one gets the row back.
 */
export async function consumeDecisionToken(
  db: Executor,
  tenantId: string,
  decisionId: string,
  jti: string,
  now: Date = new Date(),
): Promise<DecisionRow | undefined> {
  return db
    .updateTable("decisions")
    .set({ token_used_at: now, updated_at: now })
    .where("tenant_id", "=", tenantId)
    .where("decision_id", "=", decisionId)
    .where("status", "=", "approved")
    .where("token_jti", "=", jti)
    .where("token_used_at", "is", null)
    .where("token_expires_at", ">", now)
    .returningAll()
    .executeTakeFirst();
}
