import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectError } from "@connectrpc/connect";
import { SpanStatusCode, type Context as OtelContext, type Tracer } from "@opentelemetry/api";
import type { Logger } from "pino";
import { clasperError } from "@clasper/core";
import {
  AuditEventType,
  DecisionEffect,
  PreflightReasonCode,
  RiskLevel,
  ExecutionAuditEventSchema,
  PreflightRequestSchema,
  type AuthorizeToolCallResponse,
  type PreflightResponse,
  type TokenUsage,
} from "@clasper/proto";
import type { PeerClients } from "@clasper/service-kit";
import { ATTR, GOVERNANCE_OPERATION } from "@clasper/telemetry";

type Effect = "allow" | "deny" | "require_approval";

const EFFECT: Record<number, Effect> = {
  [DecisionEffect.ALLOW]: "allow",
  [DecisionEffect.DENY]: "deny",
  [DecisionEffect.REQUIRE_APPROVAL]: "require_approval",
};

/** "budget_exceeded" for PREFLIGHT_REASON_CODE_BUDGET_EXCEEDED (the REST spelling). */
function reasonName(code: PreflightReasonCode): string {
  return (PreflightReasonCode[code] ?? "unspecified").toLowerCase();
}

/**
 * The caller's error for a denied preflight (CONTRACTS.md "Errors"), from the first reason:
 * hard budget → resource_exhausted `budget_exceeded` (402); policy → permission_denied
 * `policy_denied`; an unusable decision token → `decision_token_invalid`; RBAC → 403.
 * Mirrors governance's own mapping; the runtime only sees the Preflight answer.
 */
export function preflightDenialError(res: Pick<PreflightResponse, "reasons" | "explanation">): ConnectError {
  const first = res.reasons[0]?.code ?? PreflightReasonCode.UNSPECIFIED;
  const message = res.explanation || res.reasons[0]?.message || "execution denied by governance";
  switch (first) {
    case PreflightReasonCode.BUDGET_EXCEEDED:
      return clasperError(Code.ResourceExhausted, message, { reason: "budget_exceeded", httpStatus: 402 });
    case PreflightReasonCode.POLICY_DENIED:
      return clasperError(Code.PermissionDenied, message, { reason: "policy_denied" });
    case PreflightReasonCode.DECISION_TOKEN_INVALID:
      return clasperError(Code.PermissionDenied, message, { reason: "decision_token_invalid" });
    default:
      return clasperError(Code.PermissionDenied, message, { reason: "permission_denied" });
  }
}

/** The snake_case reason a denial is reported under (stream error code, span error.type). */
export function denialCode(res: Pick<PreflightResponse, "reasons">): string {
  const first = res.reasons[0]?.code ?? PreflightReasonCode.UNSPECIFIED;
  if (first === PreflightReasonCode.BUDGET_EXCEEDED || first === PreflightReasonCode.POLICY_DENIED || first === PreflightReasonCode.DECISION_TOKEN_INVALID) {
    return reasonName(first);
  }
  return "permission_denied";
}

export type PreflightOutcome =
  | { effect: "allow"; reservationId: string; reservedMicros: number; response: PreflightResponse }
  | { effect: "deny"; response: PreflightResponse }
  | { effect: "require_approval"; decisionId: string; expiresAt: Date | undefined; response: PreflightResponse };

export type ToolVerdict = { effect: Effect; reason: string; decisionId: string };

export interface AuditScope {
  traceId: string;
  workspaceId: string;
  executionId: string;
}

/** One audit entry of an execution, appended once per (execution, key). */
export interface AuditRecord {
  type: AuditEventType;
  scope: AuditScope;
  key: string;
  data: JsonObject;
}

/** The entry as AppendAudit takes it, and as Preflight and SettleBudget carry it (ExecutionAuditEvent). */
function auditEvent({ type, scope, key, data }: AuditRecord): { eventType: AuditEventType; workspaceId: string; traceId: string; eventData: JsonObject; idempotencyKey: string } {
  return {
    eventType: type,
    workspaceId: scope.workspaceId,
    traceId: scope.traceId,
    eventData: { execution_id: scope.executionId, ...data },
    idempotencyKey: `${scope.executionId}:${key}`,
  };
}

/** The runtime's side of governance: the gate, the money, the tool verdicts and the audit trail. */
export interface Governance {
  /** `admitted` (the execution's opening entry) is appended by governance when it admits the execution. */
  preflight(req: MessageInitShape<typeof PreflightRequestSchema>, parent: OtelContext, admitted?: AuditRecord): Promise<PreflightOutcome>;
  /** `closing` is appended by governance with the settlement; a failed settle appended nothing. */
  settle(reservationId: string, actualMicros: number, model: string, usage: TokenUsage, closing?: AuditRecord): Promise<void>;
  release(reservationId: string, reason: string): Promise<void>;
  authorizeTool(
    req: { executionId: string; traceId: string; workspaceId: string; environment: string; toolName: string; agentRole: string; snapshot: JsonObject },
    parent: OtelContext,
  ): Promise<ToolVerdict>;
  /** Appends once per (execution, key); failures are logged, never fail the execution. */
  audit(type: AuditEventType, scope: AuditScope, key: string, data: JsonObject): Promise<void>;
}

export function createGovernance(peers: PeerClients, tracer: Tracer, logger: Logger): Governance {
  const governance = peers.governance;

  function decisionSpan(name: "preflight" | "tool", parent: OtelContext, attributes: Record<string, string | number | boolean | string[]>) {
    const span = tracer.startSpan(`${GOVERNANCE_OPERATION} ${name}`, { attributes: { [ATTR.operationName]: GOVERNANCE_OPERATION, ...attributes } }, parent);
    return span;
  }

  return {
    async preflight(req, parent, admitted) {
      const span = decisionSpan("preflight", parent, {});
      try {
        const request = create(PreflightRequestSchema, req);
        if (admitted) request.admittedAudit = create(ExecutionAuditEventSchema, auditEvent(admitted));
        const response = await governance.preflight(request);
        const effect = EFFECT[response.decision] ?? "deny";
        span.setAttributes({
          [ATTR.decisionEffect]: effect,
          [ATTR.decisionReasons]: response.reasons.map((r) => reasonName(r.code)),
          [ATTR.decisionExplanation]: response.explanation,
          [ATTR.matchedPolicies]: response.matchedPolicies,
          [ATTR.overrideUsed]: response.overrideUsed,
          ...(response.decisionId ? { [ATTR.decisionId]: response.decisionId } : {}),
          ...(response.reservationId ? { [ATTR.reservationId]: response.reservationId, [ATTR.reservedMicros]: Number(req.estimatedCostMicros ?? 0n) } : {}),
          ...(response.risk ? { [ATTR.riskScore]: response.risk.riskScore, [ATTR.riskLevel]: (RiskLevel[response.risk.riskLevel] ?? "unspecified").toLowerCase() } : {}),
        });
        if (effect === "allow") return { effect, reservationId: response.reservationId, reservedMicros: Number(req.estimatedCostMicros ?? 0n), response };
        if (effect === "require_approval") {
          return { effect, decisionId: response.decisionId, expiresAt: response.decisionExpiresAt ? timestampDate(response.decisionExpiresAt) : undefined, response };
        }
        span.setAttribute(ATTR.errorType, denialCode(response));
        span.setStatus({ code: SpanStatusCode.ERROR, message: response.explanation });
        return { effect: "deny", response };
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        span.end();
      }
    },

    async settle(reservationId, actualMicros, model, usage, closing) {
      await governance.settleBudget({ reservationId, actualMicros: BigInt(actualMicros), model, usage, ...(closing ? { settledAudit: auditEvent(closing) } : {}) });
    },

    async release(reservationId, reason) {
      await governance.releaseBudget({ reservationId, reason });
    },

    async authorizeTool(req, parent) {
      const span = decisionSpan("tool", parent, { [ATTR.toolName]: req.toolName });
      try {
        const res: AuthorizeToolCallResponse = await governance.authorizeToolCall({
          executionId: req.executionId,
          traceId: req.traceId,
          workspaceId: req.workspaceId,
          environment: req.environment,
          toolName: req.toolName,
          agentRole: req.agentRole,
          requestSnapshot: req.snapshot,
        });
        const effect = EFFECT[res.decision] ?? "deny";
        span.setAttributes({
          [ATTR.decisionEffect]: effect,
          [ATTR.decisionReasons]: res.reasons.map((r) => reasonName(r.code)),
          [ATTR.decisionExplanation]: res.explanation,
          [ATTR.matchedPolicies]: res.matchedPolicies,
          ...(res.decisionId ? { [ATTR.decisionId]: res.decisionId } : {}),
        });
        const reason = effect === "allow" ? "" : effect === "require_approval" ? "approval_required" : res.reasons[0] ? reasonName(res.reasons[0].code) : "policy_denied";
        return { effect, reason, decisionId: res.decisionId };
      } finally {
        span.end();
      }
    },

    async audit(type, scope, key, data) {
      try {
        await governance.appendAudit(auditEvent({ type, scope, key, data }));
      } catch (err) {
        logger.warn({ err, event: AuditEventType[type], execution_id: scope.executionId }, "audit append failed");
      }
    },
  };
}
