import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { withTransaction } from "@clasper/db";
import { failedPrecondition, invalidField, permissionDenied } from "@clasper/core";
import { isRole, principalOf, requirePermission, roleRank, workspaceScope, type Principal } from "@clasper/auth";
import {
  AuthorizeOverrideResponseSchema,
  ConsumeDecisionResponseSchema,
  DecisionStatus,
  GetDecisionResponseSchema,
  ListDecisionsResponseSchema,
  ResolveDecisionResponseSchema,
  type AuthorizeOverrideRequest,
  type AuthorizeOverrideResponse,
  type ConsumeDecisionRequest,
  type ConsumeDecisionResponse,
  type GetDecisionRequest,
  type GetDecisionResponse,
  type ListDecisionsRequest,
  type ListDecisionsResponse,
  type ResolveDecisionRequest,
  type ResolveDecisionResponse,
} from "@clasper/proto";
import type { DecisionTokens } from "../decision-token.js";
import { checkDecisionToken, loadDecision, redeemDecisionToken } from "../decisions.js";
import { authorizeOverride, checkJustification, recordOverride } from "../overrides.js";
import { decisionActions, decisionProto, decisionStatusValue, grantedScopeProto, overrideReasons } from "../policy-convert.js";
import { appendAudit } from "../store/audit.js";
import { effectiveStatus, listDecisions, resolveDecision, type DecisionRow } from "../store/decisions.js";
import type { GovernanceDatabase } from "../store/schema.js";

const DEFAULT_PAGE = 100;

function encodeCursor(decisionId: string): string {
  return Buffer.from(decisionId, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (!/^[0-9a-f-]{36}$/.test(id)) throw invalidField("cursor", "is not a cursor this service issued");
  return id;
}

/** Why a pending-only operation cannot proceed: 409 naming the current status. */
function notPending(row: DecisionRow): never {
  const status = effectiveStatus(row);
  if (status === "expired") throw failedPrecondition("decision expired before it was resolved", "decision_expired");
  throw failedPrecondition(`decision already ${status}`, "decision_not_pending");
}

/** Approval decisions: read, list, resolve, consume; and the internal AuthorizeOverride. */
export class DecisionHandlers {
  constructor(
    private readonly db: Kysely<GovernanceDatabase>,
    private readonly tokens: DecisionTokens,
  ) {}

  /** The token of an approved, unused, unexpired decision, re-minted from what is stored. */
  private async tokenOf(row: DecisionRow): Promise<{ decisionToken?: string; decisionTokenExpiresAt?: ReturnType<typeof timestampFromDate> }> {
    if (row.status !== "approved" || row.token_used_at || !row.token_jti || !row.token_issued_at || !row.token_expires_at) return {};
    if (row.token_expires_at.getTime() <= Date.now()) return {};
    const decisionToken = await this.tokens.mint(
      { tenantId: row.tenant_id, decisionId: row.decision_id, executionId: row.execution_id, workspaceId: row.workspace_id ?? undefined, jti: row.token_jti },
      row.token_issued_at,
      row.token_expires_at,
    );
    return { decisionToken, decisionTokenExpiresAt: timestampFromDate(row.token_expires_at) };
  }

  async getDecision(req: GetDecisionRequest, ctx: HandlerContext): Promise<GetDecisionResponse> {
    const row = await loadDecision(this.db, principalOf(ctx), req.decisionId);
    return create(GetDecisionResponseSchema, { decision: decisionProto(row), ...(await this.tokenOf(row)) });
  }

  async listDecisions(req: ListDecisionsRequest, ctx: HandlerContext): Promise<ListDecisionsResponse> {
    const principal = principalOf(ctx);
    const workspaceId = workspaceScope(principal, req.workspaceId);
    const status = req.status === DecisionStatus.UNSPECIFIED ? "pending" : decisionStatusValue(req.status);
    if (!status) throw invalidField("status", "unknown status");
    const limit = req.limit || DEFAULT_PAGE;
    const page = await listDecisions(this.db, principal.tenantId, {
      status,
      workspaceId,
      limit,
      after: req.cursor ? decodeCursor(req.cursor) : undefined,
    });
    const last = page.decisions[page.decisions.length - 1];
    return create(ListDecisionsResponseSchema, {
      decisions: page.decisions.map((row) => decisionProto(row)),
      hasMore: page.hasMore,
      nextCursor: page.hasMore && last ? encodeCursor(last.decision_id) : "",
    });
  }

  async resolveDecision(req: ResolveDecisionRequest, ctx: HandlerContext): Promise<ResolveDecisionResponse> {
    const principal = principalOf(ctx);
    const action = decisionActions.value(req.action);
    if (!action) throw invalidField("action", "must be approve, deny or approve_with_override");
    const justification = checkJustification(req.justification, "justification");
    const row = await loadDecision(this.db, principal, req.decisionId);
    if (!isRole(row.required_role) || roleRank(principal.role) < roleRank(row.required_role)) {
      throw permissionDenied(`resolving this decision requires role ${row.required_role}`);
    }
    if (effectiveStatus(row) !== "pending") notPending(row);
    const override = action === "approve_with_override" ? this.resolveOverride(principal, req, justification) : undefined;
    const now = new Date();
    const token = action === "deny" ? undefined : { jti: randomUUID(), issuedAt: now, expiresAt: new Date(now.getTime() + this.tokens.ttlSeconds * 1000) };

    const resolved = await withTransaction(this.db, async (trx) => {
      const updated = await resolveDecision(
        trx,
        principal.tenantId,
        row.decision_id,
        { action, actor: principal.userId, role: principal.role, justification, overrideReasonCode: override?.reasonCode, token },
        now,
      );
      // Lost to a concurrent resolver or to the clock: say which.
      if (!updated) notPending((await loadDecision(trx, principal, row.decision_id)));
      await appendAudit(trx, principal.tenantId, {
        eventType: "policy_decision_resolved",
        ...(updated.workspace_id ? { workspaceId: updated.workspace_id } : {}),
        ...(updated.trace_id ? { traceId: updated.trace_id } : {}),
        actor: principal.userId,
        data: {
          decision_id: updated.decision_id,
          execution_id: updated.execution_id,
          status: updated.status,
          action,
          actor: principal.userId,
          role: principal.role,
          justification,
          override_reason_code: override?.reasonCode ?? null,
          token_expires_at: token?.expiresAt.toISOString() ?? null,
        },
      });
      if (override) {
        await recordOverride(trx, principal, override, {
          action: "decision_resolve",
          targetId: updated.decision_id,
          workspaceId: updated.workspace_id ?? undefined,
          traceId: updated.trace_id ?? undefined,
        });
      }
      return updated;
    });
    return create(ResolveDecisionResponseSchema, { decision: decisionProto(resolved), ...(await this.tokenOf(resolved)) });
  }

  /** approve_with_override is a break-glass use: a reason code and `override:use`. */
  private resolveOverride(principal: Principal, req: ResolveDecisionRequest, justification: string) {
    const reasonCode = overrideReasons.value(req.overrideReasonCode);
    if (!reasonCode) throw invalidField("override_reason_code", "is required for approve_with_override");
    requirePermission(principal, "override:use");
    return { reasonCode, justification };
  }

  async consumeDecision(req: ConsumeDecisionRequest, ctx: HandlerContext): Promise<ConsumeDecisionResponse> {
    const principal = principalOf(ctx);
    // 404 for a decision the caller cannot see comes before anything about the token.
    await loadDecision(this.db, principal, req.decisionId);
    const { claims } = await checkDecisionToken(this.db, this.tokens, principal, req.decisionToken, { decisionId: req.decisionId });
    const row = await withTransaction(this.db, (trx) => redeemDecisionToken(trx, principal, claims, "consume"));
    return create(ConsumeDecisionResponseSchema, {
      decision: decisionProto(row),
      grantedScope: grantedScopeProto(row.granted_scope, row.token_expires_at),
    });
  }

  async authorizeOverride(req: AuthorizeOverrideRequest, ctx: HandlerContext): Promise<AuthorizeOverrideResponse> {
    const principal: Principal = principalOf(ctx);
    if (!req.override) throw invalidField("override", "is required");
    const entry = await authorizeOverride(this.db, principal, req.override, {
      action: req.action,
      targetId: req.targetId,
      ...(req.details ? { details: req.details as Record<string, unknown> } : {}),
    });
    return create(AuthorizeOverrideResponseSchema, { auditSeq: entry.seq });
  }
}
