/**
 * The execution gate the runtime calls before its first provider call. Order (seed §5.7,
 * improved so money is never held for a refused execution and side effects come last):
 *   1. RBAC: the caller holds the permission named in the request (never overridable);
 *      an attached override must itself be authorized (`override:use`).
 *   2. A presented decision token is checked (not yet used).
 *   3. Risk is scored and the tenant's policies evaluated (both read-only).
 *   4. Policy deny → deny.
 *   5. Policy require_approval, or high/critical risk without an explicit allow policy →
 *      require_approval with a pending decision, unless an approved token covers it.
 *   6. The worst-case cost is reserved atomically (hard budget exceeded → deny), and
 *   7. the token consumed, in one transaction (a lost race rolls the reservation back).
 * An authorized override bypasses 4 and 5 (never RBAC, never a hard budget); each use is audited.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { clasperError, failedPrecondition, invalidField, permissionDenied } from "@clasper/core";
import { withTransaction } from "@clasper/db";
import { hasPermission, PERMISSIONS, type Permission, type Principal } from "@clasper/auth";
import {
  DecisionEffect,
  PreflightReasonCode,
  PreflightReasonSchema,
  PreflightResponseSchema,
  UserRole,
  type BudgetCheck,
  type ExecutionAuditEvent,
  type PreflightReason,
  type PreflightRequest,
  type PreflightResponse,
} from "@clasper/proto";
import type { DecisionTokens } from "./decision-token.js";
import { checkDecisionToken, openDecision, redeemDecisionToken, RESOLVER_ROLE } from "./decisions.js";
import { checkOverride, recordOverride } from "./overrides.js";
import { grantedScopeProto, policyContextOf, riskLevels, traceProto, userRoles } from "./policy-convert.js";
import { evaluatePolicies, type PolicyEvaluation } from "./policy-engine.js";
import { isHighRisk, riskLevelName, scoreRisk, toRiskAssessment, type RiskResult } from "./risk.js";
import { appendAudit } from "./store/audit.js";
import type { GovernanceDatabase } from "./store/schema.js";
import type { GrantedScopeValue } from "./store/schema-policies.js";
import type { BudgetDefaults } from "./budget-check.js";
import { appendCallerAudit } from "./handlers/audit.js";
import { budgetCheckToProto } from "./handlers/budgets.js";
import type { BudgetBatcher } from "./budget-batcher.js";
import { reserveBudget, type ReserveInput, type ReserveOutcome } from "./store/budgets.js";

export const DEFAULT_MAX_STEPS = 100;

export interface PreflightDeps {
  db: Kysely<GovernanceDatabase>;
  /** Reservations and releases outside a transaction of Preflight's own. */
  budgets: BudgetBatcher;
  tokens: DecisionTokens;
  decisionTtlSeconds: number;
  /** The budget a tenant without one gets on its first reservation. */
  budgetDefaults: BudgetDefaults;
}

/** A token redemption refused inside the reservation transaction (which it rolls back). */
class RedemptionFailed extends Error {
  constructor(readonly refusal: ConnectError) {
    super(refusal.message);
  }
}

function reason(code: PreflightReasonCode, message: string, policyId = ""): PreflightReason {
  return create(PreflightReasonSchema, { code, message, policyId });
}

function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/**
 * The request as it applies to the caller: a token bound to a workspace acts in that workspace
 * when the request names none, so that workspace's policies apply and its decisions carry it.
 */
export function inTokenWorkspace<R extends { workspaceId: string }>(principal: Pick<Principal, "workspaceId">, req: R): R {
  return principal.workspaceId && !req.workspaceId ? { ...req, workspaceId: principal.workspaceId } : req;
}

/** The read-only part of a preflight: the risk score and the policy evaluation. */
interface Assessment {
  risk: RiskResult;
  evaluation: PolicyEvaluation;
}

export async function preflight(deps: PreflightDeps, principal: Principal, request: PreflightRequest): Promise<PreflightResponse> {
  const req = inTokenWorkspace(principal, request);
  if (!isPermission(req.permission)) throw invalidField("permission", `unknown permission "${req.permission}"`);
  const denied = (reasons: PreflightReason[], assessment?: Assessment, budget?: BudgetCheck) => deny(deps, principal, req, reasons, assessment, budget);

  // 1. RBAC, and the workspace the caller's token is bound to.
  if (!hasPermission(principal, req.permission)) {
    return denied([reason(PreflightReasonCode.RBAC_DENIED, `role ${principal.role} lacks permission ${req.permission}`)]);
  }
  if (principal.workspaceId && principal.workspaceId !== req.workspaceId) {
    return denied([reason(PreflightReasonCode.RBAC_DENIED, `workspace ${req.workspaceId} is not accessible with this token`)]);
  }
  // An override the caller may not use is refused outright (403), not silently ignored.
  const override = req.override ? checkOverride(principal, req.override) : undefined;

  // 2. The approval being redeemed, if any.
  let approval: Awaited<ReturnType<typeof checkDecisionToken>> | undefined;
  if (req.decisionToken) {
    try {
      approval = await checkDecisionToken(deps.db, deps.tokens, principal, req.decisionToken, { executionId: req.executionId });
      if (approval.decision.tool_name) throw permissionDenied("decision token is for a tool call", "decision_token_mismatch");
      if (req.estimatedCostMicros > BigInt(approval.decision.granted_scope.max_cost_micros)) {
        throw permissionDenied("estimated cost exceeds the approved maximum", "decision_token_mismatch");
      }
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      return denied([reason(PreflightReasonCode.DECISION_TOKEN_INVALID, err.rawMessage)]);
    }
  }

  // 3. Read-only assessment.
  const risk = scoreRisk(req);
  const evaluation = await evaluatePolicies(deps.db, principal.tenantId, {
    ...policyContextOf(req),
    riskLevel: riskLevels.value(risk.level),
    estimatedCostMicros: req.estimatedCostMicros,
  });
  const assessment: Assessment = { risk, evaluation };
  const winner = evaluation.winner?.policy_id ?? "";
  const bypassed: string[] = [];

  // 4. Policy deny.
  if (evaluation.decision === "deny") {
    if (!override) return denied([reason(PreflightReasonCode.POLICY_DENIED, evaluation.explanation, winner)], assessment);
    bypassed.push("policy_denied");
  }

  // 5. Approval gates.
  const needsApproval: PreflightReason[] = [];
  if (evaluation.decision === "require_approval") {
    needsApproval.push(reason(PreflightReasonCode.POLICY_REQUIRES_APPROVAL, evaluation.explanation, winner));
  }
  const explicitlyAllowed = evaluation.decision === "allow" && evaluation.winner !== undefined;
  if (isHighRisk(risk.level) && !explicitlyAllowed) {
    needsApproval.push(reason(PreflightReasonCode.RISK_REQUIRES_APPROVAL, `risk level ${riskLevelName(risk.level)} (score ${risk.score}) requires approval`));
  }
  if (needsApproval.length > 0 && !approval) {
    if (!override) return requireApproval(deps, principal, req, needsApproval, assessment);
    bypassed.push(...needsApproval.map((r) => (r.code === PreflightReasonCode.POLICY_REQUIRES_APPROVAL ? "policy_requires_approval" : "risk_requires_approval")));
  }

  // 6 + 7. Reserve the worst case (the only write so far) and redeem the approval in the same
  // transaction: if a concurrent preflight already used the token, the reservation made here
  // rolls back with the failed redemption, and a reservation shared with the winner (same
  // execution id) is left alone. Without an approval the reservation is the only write, so it goes
  // through the batcher like ReserveBudget. A hard budget holds even against an override: raising
  // it is a budget change (budget:modify), not a break-glass.
  const reservationInput = (): ReserveInput => ({
    executionId: req.executionId,
    traceId: req.traceId || undefined,
    amountMicros: req.estimatedCostMicros,
    ttlMs: req.reservationTtlMs ? Number(req.reservationTtlMs) : undefined,
    defaults: deps.budgetDefaults,
    now: new Date(),
  });
  let reserved: ReserveOutcome;
  try {
    reserved = !approval
      ? await deps.budgets.reserve(principal.tenantId, reservationInput())
      : await withTransaction(deps.db, async (trx) => {
          const outcome = await reserveBudget(trx, principal.tenantId, reservationInput());
          if (outcome.status !== "denied" && outcome.reservation.status === "open") {
            await redeemDecisionToken(trx, principal, approval.claims, "preflight").catch((err: unknown) => {
              throw err instanceof ConnectError ? new RedemptionFailed(err) : err;
            });
          }
          return outcome;
        });
  } catch (err) {
    if (!(err instanceof RedemptionFailed)) throw err;
    return denied([reason(PreflightReasonCode.DECISION_TOKEN_INVALID, err.refusal.rawMessage)], assessment);
  }
  const budget = budgetCheckToProto(reserved.check, reserved.figures);
  if (reserved.status === "denied") {
    return denied([reason(PreflightReasonCode.BUDGET_EXCEEDED, reserved.check.warning || "hard budget would be exceeded")], assessment, budget);
  }
  const reservation = reserved.reservation;
  if (reservation.status !== "open") {
    // Execution ids are single-use: a settled or released one cannot be admitted again.
    throw failedPrecondition(`execution ${req.executionId} already ran (its reservation is ${reservation.status})`, "execution_id_reused");
  }
  const reasons: PreflightReason[] = [];
  if (reserved.check.reason === "budget_exceeded") reasons.push(reason(PreflightReasonCode.BUDGET_SOFT_LIMIT, reserved.check.warning));

  if (override && bypassed.length > 0) {
    await recordOverride(deps.db, principal, override, {
      action: "execution",
      targetId: req.executionId,
      workspaceId: req.workspaceId || undefined,
      traceId: req.traceId || undefined,
      details: { bypassed },
    });
  }
  if (req.admittedAudit) await recordAdmission(deps, principal, req.admittedAudit, reserved);
  return create(PreflightResponseSchema, {
    ...common(assessment, budget),
    decision: DecisionEffect.ALLOW,
    reasons,
    explanation: approval ? "Approved by decision " + approval.decision.decision_id : evaluation.explanation,
    reservationId: reservation.reservation_id,
    decisionId: approval?.decision.decision_id ?? "",
    grantedScope: grantedScopeProto(grantedScopeOf(req), reservation.expires_at),
    overrideUsed: bypassed.length > 0,
  });
}

/**
 * Appends the caller's admission entry (the runtime's `execution_started`) once the execution is
 * admitted, after any override record so the chain keeps that order. Unrecorded, the execution is
 * not admitted: a reservation this call made is released and the error returned, so nothing runs
 * unaudited. (Should the release fail too, the reconciler returns the hold when it expires.)
 */
async function recordAdmission(deps: PreflightDeps, principal: Principal, event: ExecutionAuditEvent, reserved: ReserveOutcome & { status: "reserved" | "existing" }): Promise<void> {
  try {
    await appendCallerAudit(deps.db, principal, event, "admitted_audit.event_type");
  } catch (err) {
    if (reserved.status === "reserved") {
      await deps.budgets.release(principal.tenantId, reserved.reservation.reservation_id, "admission_not_audited", new Date()).catch(() => undefined);
    }
    throw err;
  }
}

function grantedScopeOf(req: PreflightRequest): GrantedScopeValue {
  return { capabilities: [...req.requestedCapabilities], max_steps: req.maxSteps || DEFAULT_MAX_STEPS, max_cost_micros: req.estimatedCostMicros.toString() };
}

/** What every answer carries: the risk, the policy evaluation and the budget check, when known. */
function common(assessment: Assessment | undefined, budget: BudgetCheck | undefined) {
  return {
    ...(assessment
      ? {
          risk: toRiskAssessment(assessment.risk),
          matchedPolicies: assessment.evaluation.matchedPolicies,
          decisionTrace: traceProto(assessment.evaluation.decisionTrace),
        }
      : {}),
    ...(budget ? { budget } : {}),
  };
}

/** A refusal: audited as `execution_denied`; nothing is reserved or left reserved. */
async function deny(
  deps: PreflightDeps,
  principal: Principal,
  req: PreflightRequest,
  reasons: PreflightReason[],
  assessment?: Assessment,
  budget?: BudgetCheck,
): Promise<PreflightResponse> {
  const explanation = reasons.map((r) => r.message).join("; ");
  await appendAudit(deps.db, principal.tenantId, {
    eventType: "execution_denied",
    ...(req.workspaceId ? { workspaceId: req.workspaceId } : {}),
    ...(req.traceId ? { traceId: req.traceId } : {}),
    actor: principal.userId,
    data: {
      execution_id: req.executionId,
      permission: req.permission,
      reasons: reasons.map((r) => reasonName(r.code)),
      policy_id: reasons.find((r) => r.policyId)?.policyId ?? null,
      explanation,
      ...(assessment ? { risk_score: assessment.risk.score, risk_level: riskLevelName(assessment.risk.level) } : {}),
      estimated_cost_micros: req.estimatedCostMicros.toString(),
    },
  });
  return create(PreflightResponseSchema, { ...common(assessment, budget), decision: DecisionEffect.DENY, reasons, explanation });
}

/** Opens (or re-finds) the pending decision the execution now waits on; nothing is reserved. */
async function requireApproval(
  deps: PreflightDeps,
  principal: Principal,
  req: PreflightRequest,
  reasons: PreflightReason[],
  assessment: Assessment,
): Promise<PreflightResponse> {
  const explanation = reasons.map((r) => r.message).join("; ");
  const decision = await openDecision(
    deps.db,
    principal,
    {
      executionId: req.executionId,
      traceId: req.traceId,
      workspaceId: req.workspaceId,
      environment: req.environment,
      requestSnapshot: {
        ...(req.requestSnapshot ?? {}),
        model: req.model,
        provider: req.provider,
        estimated_cost_micros: req.estimatedCostMicros.toString(),
        risk_score: assessment.risk.score,
        risk_level: riskLevelName(assessment.risk.level),
        risk_factors: assessment.risk.riskFactors,
      },
      grantedScope: grantedScopeOf(req),
      matchedPolicies: assessment.evaluation.matchedPolicies,
      decisionTrace: assessment.evaluation.decisionTrace,
      explanation,
      reasons: reasons.map((r) => reasonName(r.code)),
    },
    deps.decisionTtlSeconds,
  );
  return create(PreflightResponseSchema, {
    ...common(assessment, undefined),
    decision: DecisionEffect.REQUIRE_APPROVAL,
    reasons,
    explanation,
    decisionId: decision.decision_id,
    decisionExpiresAt: timestampFromDate(decision.expires_at),
    requiredRole: userRoles.proto(RESOLVER_ROLE, UserRole.UNSPECIFIED),
    grantedScope: grantedScopeProto(decision.granted_scope),
  });
}

/** "budget_exceeded" for PREFLIGHT_REASON_CODE_BUDGET_EXCEEDED (the REST spelling). */
export function reasonName(code: PreflightReasonCode): string {
  return (PreflightReasonCode[code] ?? "unspecified").toLowerCase();
}

/**
 * The error a caller of the runtime gets for a denied preflight (CONTRACTS.md "Errors"): hard
 * budget → resource_exhausted `budget_exceeded` (402); policy → permission_denied
 * `policy_denied`; RBAC → permission_denied; an unusable decision token → permission_denied
 * `decision_token_invalid`.
 */
export function preflightDenialError(res: Pick<PreflightResponse, "reasons" | "explanation">): ConnectError {
  const first = res.reasons[0]?.code ?? PreflightReasonCode.UNSPECIFIED;
  switch (first) {
    case PreflightReasonCode.BUDGET_EXCEEDED:
      return clasperError(Code.ResourceExhausted, res.explanation, { reason: "budget_exceeded", httpStatus: 402 });
    case PreflightReasonCode.POLICY_DENIED:
      return clasperError(Code.PermissionDenied, res.explanation, { reason: "policy_denied" });
    case PreflightReasonCode.DECISION_TOKEN_INVALID:
      return clasperError(Code.PermissionDenied, res.explanation, { reason: "decision_token_invalid" });
    default:
      return clasperError(Code.PermissionDenied, res.explanation, { reason: "permission_denied" });
  }
}
