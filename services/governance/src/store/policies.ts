import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { GovernanceDatabase } from "./schema.js";
import type { EffectValue, PoliciesTable, PolicyConditionsValue, SubjectTypeValue } from "./schema-policies.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export type PolicyRow = Selectable<PoliciesTable>;

/** A policy as the caller writes it (the tenant comes from the caller, never from here). */
export interface PolicyInput {
  policyId: string;
  workspaceId?: string | undefined;
  environment?: string | undefined;
  subjectType: SubjectTypeValue;
  subjectName?: string | undefined;
  conditions: PolicyConditionsValue;
  effect: EffectValue;
  explanation: string;
  precedence: number;
  enabled: boolean;
}

export interface PolicyFilter {
  /** Policies scoped to this workspace or to none. */
  workspaceId?: string | undefined;
  /** Policies scoped to this environment or to none. */
  environment?: string | undefined;
  enabled?: boolean | undefined;
}

/** Precedence desc, then most recently changed first: the order evaluation considers them in. */
export async function listPolicies(db: Executor, tenantId: string, filter: PolicyFilter = {}): Promise<PolicyRow[]> {
  let query = db.selectFrom("policies").selectAll().where("tenant_id", "=", tenantId);
  if (filter.workspaceId !== undefined) {
    const workspaceId = filter.workspaceId;
    query = query.where((eb) => eb.or([eb("workspace_id", "is", null), eb("workspace_id", "=", workspaceId)]));
  }
  if (filter.environment !== undefined) {
    const environment = filter.environment;
    query = query.where((eb) => eb.or([eb("environment", "is", null), eb("environment", "=", environment)]));
  }
  if (filter.enabled !== undefined) query = query.where("enabled", "=", filter.enabled);
  return query.orderBy("precedence", "desc").orderBy("updated_at", "desc").orderBy("policy_id").execute();
}

/**
 * The policies an evaluation in this scope considers: enabled, and scoped to the context's
 * workspace/environment or unscoped. A policy scoped to a workspace never applies to a context
 * without one (a missing context value never matches).
 */
export async function listCandidatePolicies(
  db: Executor,
  tenantId: string,
  scope: { workspaceId?: string | undefined; environment?: string | undefined },
): Promise<PolicyRow[]> {
  let query = db.selectFrom("policies").selectAll().where("tenant_id", "=", tenantId).where("enabled", "=", true);
  query = scope.workspaceId
    ? query.where((eb) => eb.or([eb("workspace_id", "is", null), eb("workspace_id", "=", scope.workspaceId!)]))
    : query.where("workspace_id", "is", null);
  query = scope.environment
    ? query.where((eb) => eb.or([eb("environment", "is", null), eb("environment", "=", scope.environment!)]))
    : query.where("environment", "is", null);
  return query.orderBy("precedence", "desc").orderBy("updated_at", "desc").orderBy("policy_id").execute();
}

export async function findPolicy(db: Executor, tenantId: string, policyId: string): Promise<PolicyRow | undefined> {
  return db.selectFrom("policies").selectAll().where("tenant_id", "=", tenantId).where("policy_id", "=", policyId).executeTakeFirst();
}

/**
 * Whose policies a write may touch: the tenant's, and only those scoped to `workspaceId` when it
 * is given (a caller bound to one workspace).
 */
export interface PolicyOwner {
  tenantId: string;
  workspaceId?: string | undefined;
}

/**
 * Creates or replaces the policy in one statement; `created` is true when it did not exist.
 * Undefined when the id is taken by a policy the owner may not replace (another workspace's, or a
 * tenant-wide one for a workspace-bound owner): the same statement decides, so no concurrent
 * write slips between a check and the replace.
 */
export async function upsertPolicy(
  db: Executor,
  owner: PolicyOwner,
  input: PolicyInput,
  actor: string,
): Promise<{ policy: PolicyRow; created: boolean } | undefined> {
  const values = {
    workspace_id: input.workspaceId || null,
    environment: input.environment || null,
    subject_type: input.subjectType,
    subject_name: input.subjectName || null,
    conditions: JSON.stringify(input.conditions),
    effect: input.effect,
    explanation: input.explanation,
    precedence: input.precedence,
    enabled: input.enabled,
    updated_by: actor,
  };
  const row = await db
    .insertInto("policies")
    .values({ tenant_id: owner.tenantId, policy_id: input.policyId, ...values })
    .onConflict((oc) => {
      const update = oc.columns(["tenant_id", "policy_id"]).doUpdateSet({ ...values, updated_at: new Date() });
      return owner.workspaceId === undefined ? update : update.where("policies.workspace_id", "=", owner.workspaceId);
    })
    .returningAll()
    // xmax is 0 for a freshly inserted row version, non-zero when ON CONFLICT updated it.
    .returning(sql<boolean>`(xmax = 0)`.as("inserted"))
    .executeTakeFirst();
  if (!row) return undefined;
  const { inserted, ...policy } = row;
  return { policy, created: inserted };
}

/** Changes enabled and/or precedence; undefined when the owner has no such policy. */
export async function updatePolicy(
  db: Executor,
  owner: PolicyOwner,
  policyId: string,
  change: { enabled?: boolean | undefined; precedence?: number | undefined },
  actor: string,
): Promise<PolicyRow | undefined> {
  return db
    .updateTable("policies")
    .set({
      ...(change.enabled !== undefined ? { enabled: change.enabled } : {}),
      ...(change.precedence !== undefined ? { precedence: change.precedence } : {}),
      updated_at: new Date(),
      updated_by: actor,
    })
    .where("tenant_id", "=", owner.tenantId)
    .where("policy_id", "=", policyId)
    .$if(owner.workspaceId !== undefined, (q) => q.where("workspace_id", "=", owner.workspaceId!))
    .returningAll()
    .executeTakeFirst();
}

/** Deletes the policy; returns what was deleted, undefined when the owner has no such policy. */
export async function deletePolicy(db: Executor, owner: PolicyOwner, policyId: string): Promise<PolicyRow | undefined> {
  return db
    .deleteFrom("policies")
    .where("tenant_id", "=", owner.tenantId)
    .where("policy_id", "=", policyId)
    .$if(owner.workspaceId !== undefined, (q) => q.where("workspace_id", "=", owner.workspaceId!))
    .returningAll()
    .executeTakeFirst();
}
