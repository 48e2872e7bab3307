import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorInfoOf } from "@clasper/core";
import { testBackendFromEnv } from "@clasper/db/testing";
import {
  AuditEventType,
  DataSensitivity,
  DecisionAction,
  DecisionEffect,
  OverrideReasonCode,
  PolicySubjectType,
  PreflightReasonCode,
  RiskLevel,
  SkillState,
  UserRole,
} from "@clasper/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PreflightRequestSchema } from "@clasper/proto";
import { preflightDenialError } from "../src/preflight.js";
import { listAuditEntries } from "../src/store/audit.js";
import { upsertBudget } from "../src/store/budgets.js";
import { rejection, usePoliciesHarness } from "./policies-support.js";

const h = usePoliciesHarness();

let seq = 0;
function request(init: MessageInitShape<typeof PreflightRequestSchema> = {}): MessageInitShape<typeof PreflightRequestSchema> {
  seq += 1;
  return {
    executionId: `exec-${seq}`,
    permission: "agent:execute",
    environment: "prod",
    estimatedCostMicros: 1_000n,
    skillState: SkillState.ACTIVE,
    skillPinned: true,
    skillTested: true,
    temperature: 0.2,
    requestedCapabilities: ["llm"],
    ...init,
  };
}

/** Signals that score critical: risky tools, personal data, a draft skill, high temperature. */
const risky = {
  toolNames: ["execute_code", "delete_file", "send_email", "run_command"],
  dataSensitivity: DataSensitivity.PII,
  skillState: SkillState.DRAFT,
  skillPinned: false,
  skillTested: false,
  temperature: 2,
  customFlags: ["a", "b", "c", "d", "e"],
};

async function reservations(tenantId: string) {
  return h.db.selectFrom("budget_reservations").selectAll().where("tenant_id", "=", tenantId).execute();
}

async function events(tenantId: string, eventType: string) {
  return (await listAuditEntries(h.db, tenantId, { eventType }, { limit: 50 })).entries;
}

describe(`preflight (${testBackendFromEnv()})`, () => {
  it("appends the caller's admission entry when it admits the execution, once per key, and never for a refusal", async () => {
    const runner = h.client({ tenantId: "t-admit", roles: ["operator"], userId: "runner-7" });
    const admitted = (executionId: string) => ({
      eventType: AuditEventType.AGENT_EXECUTION_STARTED,
      workspaceId: "ws-1",
      traceId: "trace-1",
      eventData: { execution_id: executionId, model: "gpt-4o-mini" },
      idempotencyKey: `${executionId}:started`,
    });
    const first = request();
    const res = await runner.preflight({ ...first, admittedAudit: admitted(first.executionId!) });
    expect(res.decision).toBe(DecisionEffect.ALLOW);
    // A retried Preflight of the same execution re-admits it and appends nothing more.
    expect((await runner.preflight({ ...first, admittedAudit: admitted(first.executionId!) })).reservationId).toBe(res.reservationId);
    const started = await events("t-admit", "agent_execution_started");
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ actor: "runner-7", workspace_id: "ws-1", trace_id: "trace-1", data: { execution_id: first.executionId, model: "gpt-4o-mini" } });

    // A hard budget refusal: audited as execution_denied, no admission entry.
    await upsertBudget(h.db, "t-admit", { limitMicros: 10n, hardLimit: true }, new Date());
    const refused = request({ estimatedCostMicros: 1_000_000n });
    expect((await runner.preflight({ ...refused, admittedAudit: admitted(refused.executionId!) })).decision).toBe(DecisionEffect.DENY);
    expect(await events("t-admit", "agent_execution_started")).toHaveLength(1);

  });

  it("allows a plain execution and reserves its worst-case cost", async () => {
    const runner = h.client({ tenantId: "t-allow", roles: ["operator"] });
    const res = await runner.preflight(request({ estimatedCostMicros: 2_500n, maxSteps: 7 }));
    expect(res.decision).toBe(DecisionEffect.ALLOW);
    expect(res.reasons).toEqual([]);
    expect(res.reservationId).not.toBe("");
    expect(res.risk?.riskLevel).toBe(RiskLevel.LOW);
    expect(res.budget?.allowed).toBe(true);
    expect(res.grantedScope).toMatchObject({ capabilities: ["llm"], maxSteps: 7, maxCostMicros: 2_500n });
    expect(res.grantedScope?.expiresAt).toBeDefined();
    const held = await reservations("t-allow");
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ reservation_id: res.reservationId, amount_micros: 2_500n, status: "open" });
  });

  it("denies on a policy, holds no money, audits, and maps to policy_denied", async () => {
    const admin = h.client({ tenantId: "t-deny" });
    await admin.upsertPolicy({ policyId: "no-prod", scope: { environment: "prod" }, subject: { type: PolicySubjectType.COST }, effect: { decision: DecisionEffect.DENY }, explanation: "prod is frozen" });
    const res = await h.client({ tenantId: "t-deny", roles: ["operator"] }).preflight(request());
    expect(res.decision).toBe(DecisionEffect.DENY);
    expect(res.reasons.map((r) => [r.code, r.policyId])).toEqual([[PreflightReasonCode.POLICY_DENIED, "no-prod"]]);
    expect(res.matchedPolicies).toEqual(["no-prod"]);
    expect(res.reservationId).toBe("");
    expect(await reservations("t-deny")).toEqual([]);
    expect((await events("t-deny", "execution_denied"))[0]?.data).toMatchObject({ reasons: ["policy_denied"], policy_id: "no-prod" });
    const error = preflightDenialError(res);
    expect(error.code).toBe(Code.PermissionDenied);
    expect(errorInfoOf(error)?.code).toBe("policy_denied");
  });

  it("requires approval on a policy: opens one pending decision, reserves nothing", async () => {
    const admin = h.client({ tenantId: "t-appr" });
    await admin.upsertPolicy({ policyId: "review", subject: { type: PolicySubjectType.AGENT, name: "finance" }, effect: { decision: DecisionEffect.REQUIRE_APPROVAL }, explanation: "finance agent needs review" });
    const runner = h.client({ tenantId: "t-appr", roles: ["operator"] });
    const req = request({ agentRole: "finance" });
    const res = await runner.preflight(req);
    expect(res.decision).toBe(DecisionEffect.REQUIRE_APPROVAL);
    expect(res.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.POLICY_REQUIRES_APPROVAL]);
    expect(res).toMatchObject({ requiredRole: UserRole.RELEASE_MANAGER, reservationId: "" });
    expect(res.decisionId).not.toBe("");
    expect(await reservations("t-appr")).toEqual([]);
    // A retried preflight waits on the same decision.
    expect((await runner.preflight(req)).decisionId).toBe(res.decisionId);
    expect(await events("t-appr", "policy_decision_pending")).toHaveLength(1);
    const decision = (await runner.getDecision({ decisionId: res.decisionId })).decision;
    expect(decision).toMatchObject({ executionId: req.executionId, reasons: ["policy_requires_approval"], requestedBy: "user-1" });
  });

  it("requires approval for high risk unless a policy explicitly allows", async () => {
    const runner = h.client({ tenantId: "t-risk", roles: ["operator"] });
    const res = await runner.preflight(request(risky));
    expect(res.risk?.riskLevel).toBe(RiskLevel.CRITICAL);
    expect(res.decision).toBe(DecisionEffect.REQUIRE_APPROVAL);
    expect(res.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.RISK_REQUIRES_APPROVAL]);

    await h.client({ tenantId: "t-risk" }).upsertPolicy({ policyId: "trusted-env", subject: { type: PolicySubjectType.ENVIRONMENT, name: "sandbox" }, effect: { decision: DecisionEffect.ALLOW } });
    const allowed = await runner.preflight(request({ ...risky, environment: "sandbox" }));
    expect(allowed.decision).toBe(DecisionEffect.ALLOW);
    expect(allowed.matchedPolicies).toEqual(["trusted-env"]);
  });

  it("denies over a hard budget (402) without holding anything, and warns over a soft one", async () => {
    await upsertBudget(h.db, "t-hard", { limitMicros: 1_000n, hardLimit: true }, new Date());
    const runner = h.client({ tenantId: "t-hard", roles: ["operator"] });
    const res = await runner.preflight(request({ estimatedCostMicros: 5_000n }));
    expect(res.decision).toBe(DecisionEffect.DENY);
    expect(res.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.BUDGET_EXCEEDED]);
    expect(res.budget?.allowed).toBe(false);
    const error = preflightDenialError(res);
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(errorInfoOf(error)).toMatchObject({ code: "budget_exceeded", httpStatus: 402 });
    const budget = await h.db.selectFrom("budgets").selectAll().where("tenant_id", "=", "t-hard").executeTakeFirstOrThrow();
    expect(budget.reserved_micros).toBe(0n);
    // An override does not lift a hard budget.
    const manager = h.client({ tenantId: "t-hard", roles: ["release_manager"] });
    const forced = await manager.preflight(request({ estimatedCostMicros: 5_000n, override: { reasonCode: OverrideReasonCode.HOTFIX, justification: "shipping the fix now" } }));
    expect(forced.decision).toBe(DecisionEffect.DENY);

    await upsertBudget(h.db, "t-soft", { limitMicros: 1_000n, hardLimit: false }, new Date());
    const soft = await h.client({ tenantId: "t-soft", roles: ["operator"] }).preflight(request({ estimatedCostMicros: 5_000n }));
    expect(soft.decision).toBe(DecisionEffect.ALLOW);
    expect(soft.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.BUDGET_SOFT_LIMIT]);
  });

  it("denies a caller without the named permission, and rejects unknown permissions", async () => {
    const viewer = h.client({ tenantId: "t-rbac", roles: ["viewer"] });
    const res = await viewer.preflight(request());
    expect(res.decision).toBe(DecisionEffect.DENY);
    expect(res.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.RBAC_DENIED]);
    expect(await reservations("t-rbac")).toEqual([]);
    const wrongWorkspace = await h.client({ tenantId: "t-rbac", roles: ["admin"], workspaceId: "ws-a" }).preflight(request({ workspaceId: "ws-b" }));
    expect(wrongWorkspace.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.RBAC_DENIED]);
    const unknown = await rejection(viewer.preflight(request({ permission: "agent:fly" })));
    expect(errorInfoOf(unknown)?.field).toBe("permission");
    const missing = await rejection(viewer.preflight(request({ executionId: "" })));
    expect(errorInfoOf(missing)?.field).toBe("execution_id");
  });

  it("resumes an approved execution with its decision token, exactly once", async () => {
    const tenantId = "t-token";
    await h.client({ tenantId }).upsertPolicy({ policyId: "review-all", subject: { type: PolicySubjectType.COST }, effect: { decision: DecisionEffect.REQUIRE_APPROVAL } });
    const runner = h.client({ tenantId, roles: ["operator"] });
    const req = request();
    const pending = await runner.preflight(req);
    expect(pending.decision).toBe(DecisionEffect.REQUIRE_APPROVAL);
    const { decisionToken } = await h.client({ tenantId, roles: ["release_manager"] }).resolveDecision({ decisionId: pending.decisionId, action: DecisionAction.APPROVE, justification: "looked fine to me" });

    const otherExecution = await runner.preflight({ ...req, executionId: "someone-else", decisionToken });
    expect(otherExecution.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.DECISION_TOKEN_INVALID]);
    const tooExpensive = await runner.preflight({ ...req, estimatedCostMicros: 1_000_000n, decisionToken });
    expect(tooExpensive.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.DECISION_TOKEN_INVALID]);

    const resumed = await runner.preflight({ ...req, decisionToken });
    expect(resumed).toMatchObject({ decision: DecisionEffect.ALLOW, decisionId: pending.decisionId });
    expect(resumed.reservationId).not.toBe("");
    const replay = await runner.preflight({ ...req, executionId: "replay", decisionToken });
    expect(replay.decision).toBe(DecisionEffect.DENY);
    const sameAgain = await runner.preflight({ ...req, decisionToken });
    expect(sameAgain.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.DECISION_TOKEN_INVALID]);
    expect(await events(tenantId, "policy_decision_consumed")).toHaveLength(1);

    // Another tenant cannot use it.
    const stranger = await h.client({ tenantId: "t-token-other", roles: ["operator"] }).preflight({ ...req, decisionToken });
    expect(stranger.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.DECISION_TOKEN_INVALID]);
  });

  it("admits exactly one of many concurrent resumptions and keeps the winner's reservation", async () => {
    const tenantId = "t-token-race";
    await h.client({ tenantId }).upsertPolicy({ policyId: "review-all", subject: { type: PolicySubjectType.COST }, effect: { decision: DecisionEffect.REQUIRE_APPROVAL } });
    const runner = h.client({ tenantId, roles: ["operator"] });
    const req = request({ estimatedCostMicros: 700n });
    const pending = await runner.preflight(req);
    const { decisionToken } = await h.client({ tenantId, roles: ["admin"] }).resolveDecision({ decisionId: pending.decisionId, action: DecisionAction.APPROVE, justification: "approved for the race" });
    const results = await Promise.all(Array.from({ length: 8 }, () => runner.preflight({ ...req, decisionToken })));
    const allowed = results.filter((r) => r.decision === DecisionEffect.ALLOW);
    expect(allowed).toHaveLength(1);
    for (const r of results.filter((x) => x.decision !== DecisionEffect.ALLOW)) {
      expect(r.reasons.map((x) => x.code)).toEqual([PreflightReasonCode.DECISION_TOKEN_INVALID]);
    }
    const held = await reservations(tenantId);
    expect(held.map((r) => [r.reservation_id, r.status, r.amount_micros])).toEqual([[allowed[0]!.reservationId, "open", 700n]]);
    expect(await events(tenantId, "policy_decision_consumed")).toHaveLength(1);
  });

  it("lets an authorized override bypass policy and risk gates, audited", async () => {
    const tenantId = "t-override";
    await h.client({ tenantId }).upsertPolicy({ policyId: "freeze", subject: { type: PolicySubjectType.COST }, effect: { decision: DecisionEffect.DENY } });
    const override = { reasonCode: OverrideReasonCode.INCIDENT_RESPONSE, justification: "outage INC-42 needs the agent" };
    const operator = h.client({ tenantId, roles: ["operator"] });
    expect((await rejection(operator.preflight(request({ override })))).code).toBe(Code.PermissionDenied);
    const short = await rejection(operator.preflight(request({ override: { ...override, justification: "short" } })));
    expect(errorInfoOf(short)?.field).toBe("override.justification");

    const manager = h.client({ tenantId, userId: "mgr", roles: ["release_manager"] });
    const req = request({ ...risky, override });
    const res = await manager.preflight(req);
    expect(res).toMatchObject({ decision: DecisionEffect.ALLOW, overrideUsed: true });
    const audit = await events(tenantId, "ops_override_used");
    expect(audit).toHaveLength(1);
    expect(audit[0]?.data).toMatchObject({
      actor: "mgr",
      role: "release_manager",
      action: "execution",
      target_id: req.executionId,
      reason_code: "incident_response",
      justification: override.justification,
      details: { bypassed: ["policy_denied", "risk_requires_approval"] },
    });
  });

  it("authorizes tool calls by policy", async () => {
    const tenantId = "t-tools";
    const admin = h.client({ tenantId });
    await admin.upsertPolicy({ policyId: "no-delete", subject: { type: PolicySubjectType.TOOL, name: "delete_file" }, effect: { decision: DecisionEffect.DENY }, explanation: "never delete" });
    await admin.upsertPolicy({ policyId: "mail-review", subject: { type: PolicySubjectType.TOOL, name: "send_email" }, effect: { decision: DecisionEffect.REQUIRE_APPROVAL } });
    const runner = h.client({ tenantId, roles: ["operator"] });
    const base = { executionId: "exec-tools", environment: "prod" };
    expect((await runner.authorizeToolCall({ ...base, toolName: "read_file" })).decision).toBe(DecisionEffect.ALLOW);
    const denied = await runner.authorizeToolCall({ ...base, toolName: "delete_file" });
    expect(denied).toMatchObject({ decision: DecisionEffect.DENY, explanation: "never delete" });
    expect(denied.reasons.map((r) => [r.code, r.policyId])).toEqual([[PreflightReasonCode.POLICY_DENIED, "no-delete"]]);
    expect(await events(tenantId, "tool_authorization_denied")).toHaveLength(1);
    const approval = await runner.authorizeToolCall({ ...base, toolName: "send_email" });
    expect(approval.decision).toBe(DecisionEffect.REQUIRE_APPROVAL);
    expect((await runner.getDecision({ decisionId: approval.decisionId })).decision?.toolName).toBe("send_email");
    // A tool decision's token does not admit a whole execution.
    const { decisionToken } = await admin.resolveDecision({ decisionId: approval.decisionId, action: DecisionAction.APPROVE, justification: "one email is fine" });
    const misuse = await runner.preflight(request({ executionId: "exec-tools", decisionToken }));
    expect(misuse.reasons.map((r) => r.code)).toEqual([PreflightReasonCode.DECISION_TOKEN_INVALID]);
    expect((await runner.consumeDecision({ decisionId: approval.decisionId, decisionToken })).grantedScope?.capabilities).toEqual(["tool:send_email"]);
    expect((await h.client({ tenantId, roles: ["viewer"] }).authorizeToolCall({ ...base, toolName: "read_file" })).decision).toBe(DecisionEffect.DENY);
  });
});
