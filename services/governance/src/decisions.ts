/**
 * Approval decisions as a process: opening one when a gate requires approval, and checking and
 * redeeming the single-use decision token minted when it is approved. Shared by the decision
 * RPCs, Preflight and AuthorizeToolCall.
 */
import { Code } from "@connectrpc/connect";
import type { Kysely, Transaction } from "kysely";
import { alreadyExists, clasperError, failedPrecondition, notFound, permissionDenied } from "@clasper/core";
import { minimumRole, type Principal } from "@clasper/auth";
import { withTransaction } from "@clasper/db";
import { DecisionTokenError, type DecisionTokenClaims, type DecisionTokens } from "./decision-token.js";
import { appendAudit } from "./store/audit.js";
import {
  consumeDecisionToken,
  createDecision,
  effectiveStatus,
  findDecision,
  findOpenDecision,
  type DecisionRow,
  type NewDecision,
} from "./store/decisions.js";
import type { GovernanceDatabase } from "./store/schema.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

/** The lowest role that may resolve a decision: whoever holds `decision:resolve`. */
export const RESOLVER_ROLE = minimumRole("decision:resolve");

/**
 * A decision outside the caller's workspace is as invisible as another tenant's; for a
 * workspace-bound caller that includes one of an execution that named no workspace, which its
 * pending list does not show either.
 */
export function visibleTo(principal: Pick<Principal, "workspaceId">, row: Pick<DecisionRow, "workspace_id">): boolean {
  return !principal.workspaceId || principal.workspaceId === row.workspace_id;
}

/** The tenant's decision, or NotFound (also for another tenant's or workspace's id). */
export async function loadDecision(db: Executor, principal: Principal, decisionId: string): Promise<DecisionRow> {
  const row = await findDecision(db, principal.tenantId, decisionId);
  if (!row || !visibleTo(principal, row)) throw notFound("decision", "decision_id");
  return row;
}

/**
 * The pending decision an execution (or one of its tool calls) waits on: the open one if a
 * retry already created it, else a new one, audited as `policy_decision_pending`.
 */
export async function openDecision(
  db: Kysely<GovernanceDatabase>,
  principal: Pick<Principal, "tenantId" | "userId">,
  input: Omit<NewDecision, "requiredRole" | "expiresAt" | "requestedBy">,
  ttlSeconds: number,
): Promise<DecisionRow> {
  const existing = await findOpenDecision(db, principal.tenantId, input.executionId, input.toolName);
  if (existing) {
    // Execution ids are the runtime's uuidv7s; one met again in another workspace is not a retry.
    if ((existing.workspace_id ?? "") !== (input.workspaceId ?? "")) {
      throw alreadyExists("execution_id has a pending decision in another workspace", "execution_id");
    }
    return existing;
  }
  return withTransaction(db, async (trx) => {
    const row = await createDecision(trx, principal.tenantId, {
      ...input,
      requiredRole: RESOLVER_ROLE,
      expiresAt: new Date(Date.now() + ttlSeconds * 1000),
      requestedBy: principal.userId,
    });
    await appendAudit(trx, principal.tenantId, {
      eventType: "policy_decision_pending",
      ...(row.workspace_id ? { workspaceId: row.workspace_id } : {}),
      ...(row.trace_id ? { traceId: row.trace_id } : {}),
      actor: principal.userId,
      data: {
        decision_id: row.decision_id,
        execution_id: row.execution_id,
        tool_name: row.tool_name,
        required_role: row.required_role,
        expires_at: row.expires_at.toISOString(),
        reasons: row.reasons,
        matched_policies: row.matched_policies,
      },
    });
    return row;
  });
}

function tokenError(err: unknown): never {
  if (err instanceof DecisionTokenError) {
    throw clasperError(Code.InvalidArgument, err.message, {
      reason: err.reason === "expired" ? "decision_token_expired" : "decision_token_invalid",
      field: "decision_token",
    });
  }
  throw err;
}

/**
 * Verifies a presented token and the decision it names, without using it: signature and expiry,
 * bound to the caller's tenant (and to `expect`), the decision approved and not yet consumed.
 * Throws the ConnectError the caller would get; Preflight turns it into a reason instead.
 */
export async function checkDecisionToken(
  db: Executor,
  tokens: DecisionTokens,
  principal: Principal,
  token: string,
  expect: { decisionId?: string; executionId?: string },
): Promise<{ claims: DecisionTokenClaims; decision: DecisionRow }> {
  const claims = await tokens.verify(token).catch(tokenError);
  // Another tenant's decision answers as one that does not exist, like any other tenant's resource.
  if (claims.tenantId !== principal.tenantId) throw notFound("decision", "decision_token");
  if (expect.decisionId !== undefined && claims.decisionId !== expect.decisionId) {
    throw permissionDenied("decision token belongs to another decision", "decision_token_mismatch");
  }
  if (expect.executionId !== undefined && claims.executionId !== expect.executionId) {
    throw permissionDenied("decision token belongs to another execution", "decision_token_mismatch");
  }
  const decision = await loadDecision(db, principal, claims.decisionId);
  if (decision.token_jti !== claims.jti || decision.execution_id !== claims.executionId) {
    throw permissionDenied("decision token was not issued for this decision", "decision_token_mismatch");
  }
  assertRedeemable(decision);
  return { claims, decision };
}

function assertRedeemable(decision: DecisionRow): void {
  const status = effectiveStatus(decision);
  if (status !== "approved") throw failedPrecondition(`decision is ${status}, not approved`, "decision_not_approved");
  if (decision.token_used_at) throw clasperError(Code.AlreadyExists, "decision token already used", { reason: "decision_token_used" });
  if (decision.token_expires_at && decision.token_expires_at.getTime() <= Date.now()) {
    throw failedPrecondition("decision token expired", "decision_token_expired");
  }
}

/**
 * Uses a checked token: one conditional UPDATE, so of any number of concurrent redeemers exactly
 * one succeeds and the others get `decision_token_used` (409). Audited as
 * `policy_decision_consumed` in the same transaction.
 */
export async function redeemDecisionToken(
  trx: Transaction<GovernanceDatabase>,
  principal: Principal,
  claims: DecisionTokenClaims,
  via: "consume" | "preflight",
): Promise<DecisionRow> {
  const row = await consumeDecisionToken(trx, principal.tenantId, claims.decisionId, claims.jti);
  if (!row) {
    const current = await loadDecision(trx, principal, claims.decisionId);
    assertRedeemable(current);
    // Still redeemable yet not updated: the jti changed under us (cannot happen today).
    throw permissionDenied("decision token was not issued for this decision", "decision_token_mismatch");
  }
  await appendAudit(trx, principal.tenantId, {
    eventType: "policy_decision_consumed",
    ...(row.workspace_id ? { workspaceId: row.workspace_id } : {}),
    ...(row.trace_id ? { traceId: row.trace_id } : {}),
    actor: principal.userId,
    data: { decision_id: row.decision_id, execution_id: row.execution_id, tool_name: row.tool_name, via },
  });
  return row;
}
