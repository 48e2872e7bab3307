import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorInfoOf } from "@clasper/core";
import { testBackendFromEnv } from "@clasper/db/testing";
import { DecisionAction, DecisionStatus, OverrideReasonCode, UserRole } from "@clasper/proto";
import { listAuditEntries } from "../src/store/audit.js";
import { createDecision } from "../src/store/decisions.js";
import { rejection, usePoliciesHarness } from "./policies-support.js";

const h = usePoliciesHarness();

let seq = 0;
/** A pending decision of `tenantId`, as Preflight would open it. */
async function pending(tenantId: string, options: { ttlMs?: number; workspaceId?: string } = {}) {
  seq += 1;
  return createDecision(h.db, tenantId, {
    executionId: `exec-${seq}`,
    workspaceId: options.workspaceId,
    requiredRole: "release_manager",
    expiresAt: new Date(Date.now() + (options.ttlMs ?? 3_600_000)),
    grantedScope: { capabilities: ["llm"], max_steps: 10, max_cost_micros: "1000" },
    matchedPolicies: ["p1"],
    decisionTrace: [{ policy_id: "p1", result: "matched", decision: "require_approval", explanation: "needs review" }],
    explanation: "needs review",
    reasons: ["policy_requires_approval"],
    requestedBy: "requester",
  });
}

const justification = "Reviewed the request with the team";

describe(`decisions (${testBackendFromEnv()})`, () => {
  it("goes pending → approved → consumed exactly once, auditing each step", async () => {
    const row = await pending("t-life");
    const resolver = h.client({ tenantId: "t-life", userId: "rm", roles: ["release_manager"] });
    const runner = h.client({ tenantId: "t-life", userId: "requester", roles: ["operator"] });

    const before = await runner.getDecision({ decisionId: row.decision_id });
    expect(before.decision).toMatchObject({ status: DecisionStatus.PENDING, requiredRole: UserRole.RELEASE_MANAGER, matchedPolicies: ["p1"] });
    expect(before.decisionToken).toBe("");
    expect((await resolver.listDecisions({})).decisions.map((d) => d.decisionId)).toContain(row.decision_id);

    const resolved = await resolver.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification });
    expect(resolved.decision?.status).toBe(DecisionStatus.APPROVED);
    expect(resolved.decision?.resolution).toMatchObject({ action: DecisionAction.APPROVE, actor: "rm", role: UserRole.RELEASE_MANAGER, justification });
    expect(resolved.decisionToken).not.toBe("");
    // GetDecision hands out the same token until it is used.
    expect((await runner.getDecision({ decisionId: row.decision_id })).decisionToken).toBe(resolved.decisionToken);

    const consumed = await runner.consumeDecision({ decisionId: row.decision_id, decisionToken: resolved.decisionToken });
    expect(consumed.decision?.decisionTokenUsedAt).toBeDefined();
    expect(consumed.grantedScope).toMatchObject({ capabilities: ["llm"], maxSteps: 10, maxCostMicros: 1000n });
    const again = await rejection(runner.consumeDecision({ decisionId: row.decision_id, decisionToken: resolved.decisionToken }));
    expect(again.code).toBe(Code.AlreadyExists);
    expect(errorInfoOf(again)?.code).toBe("decision_token_used");
    expect((await runner.getDecision({ decisionId: row.decision_id })).decisionToken).toBe("");

    const events = await listAuditEntries(h.db, "t-life", {}, { limit: 10 });
    expect(events.entries.map((e) => e.event_type).reverse()).toEqual(["policy_decision_resolved", "policy_decision_consumed"]);
  });

  it("lets exactly one of many concurrent consumers win", async () => {
    const row = await pending("t-race");
    const resolver = h.client({ tenantId: "t-race", roles: ["admin"] });
    const { decisionToken } = await resolver.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification });
    const runner = h.client({ tenantId: "t-race", roles: ["operator"] });
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => runner.consumeDecision({ decisionId: row.decision_id, decisionToken })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.AlreadyExists);
  });

  it("refuses to resolve twice (409) and never mints a token on deny", async () => {
    const row = await pending("t-twice");
    const resolver = h.client({ tenantId: "t-twice", roles: ["release_manager"] });
    const denied = await resolver.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.DENY, justification });
    expect(denied.decision?.status).toBe(DecisionStatus.DENIED);
    expect(denied.decisionToken).toBe("");
    const second = await rejection(resolver.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification }));
    expect(second.code).toBe(Code.FailedPrecondition);
    expect(errorInfoOf(second)?.code).toBe("decision_not_pending");

    const raced = await pending("t-twice");
    const outcomes = await Promise.allSettled(
      [DecisionAction.APPROVE, DecisionAction.DENY, DecisionAction.APPROVE].map((action) => resolver.resolveDecision({ decisionId: raced.decision_id, action, justification })),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
  });

  it("expires: reports expired, cannot be resolved, drops out of the pending queue", async () => {
    const row = await pending("t-exp", { ttlMs: 300 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const resolver = h.client({ tenantId: "t-exp", roles: ["admin"] });
    expect((await resolver.getDecision({ decisionId: row.decision_id })).decision?.status).toBe(DecisionStatus.EXPIRED);
    const late = await rejection(resolver.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification }));
    expect(late.code).toBe(Code.FailedPrecondition);
    expect(errorInfoOf(late)?.code).toBe("decision_expired");
    expect((await resolver.listDecisions({})).decisions).toEqual([]);
    expect((await resolver.listDecisions({ status: DecisionStatus.EXPIRED })).decisions.map((d) => d.decisionId)).toEqual([row.decision_id]);
  });

  it("requires decision:resolve to list or resolve, and override:use for approve_with_override", async () => {
    const row = await pending("t-roles");
    const operator = h.client({ tenantId: "t-roles", roles: ["operator"] });
    expect((await rejection(operator.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification }))).code).toBe(Code.PermissionDenied);
    expect((await rejection(operator.listDecisions({}))).code).toBe(Code.PermissionDenied);
    const noReason = await rejection(
      h.client({ tenantId: "t-roles", roles: ["admin"] }).resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE_WITH_OVERRIDE, justification }),
    );
    expect(noReason.code).toBe(Code.InvalidArgument);
    const overridden = await h
      .client({ tenantId: "t-roles", userId: "boss", roles: ["admin"] })
      .resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE_WITH_OVERRIDE, justification, overrideReasonCode: OverrideReasonCode.INCIDENT_RESPONSE });
    expect(overridden.decision?.resolution?.overrideReasonCode).toBe(OverrideReasonCode.INCIDENT_RESPONSE);
    const audit = await listAuditEntries(h.db, "t-roles", { eventType: "ops_override_used" }, { limit: 1 });
    expect(audit.entries[0]?.data).toMatchObject({ actor: "boss", role: "admin", action: "decision_resolve", target_id: row.decision_id, reason_code: "incident_response", justification });
  });

  it("validates the justification and the token", async () => {
    const row = await pending("t-input");
    const admin = h.client({ tenantId: "t-input", roles: ["admin"] });
    const short = await rejection(admin.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification: "ok" }));
    expect(errorInfoOf(short)?.field).toBe("justification");
    const blank = await rejection(admin.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification: "    short     " }));
    expect(errorInfoOf(blank)?.field).toBe("justification");
    const forged = await rejection(admin.consumeDecision({ decisionId: row.decision_id, decisionToken: "not.a.token" }));
    expect(forged.code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(forged)).toMatchObject({ code: "decision_token_invalid", field: "decision_token" });
    const noToken = await rejection(admin.consumeDecision({ decisionId: row.decision_id, decisionToken: "" }));
    expect(errorInfoOf(noToken)?.field).toBe("decision_token");
  });

  it("hides another tenant's decisions (404) and refuses its tokens", async () => {
    const row = await pending("t-home");
    const { decisionToken } = await h.client({ tenantId: "t-home", roles: ["admin"] }).resolveDecision({ decisionId: row.decision_id, action: DecisionAction.APPROVE, justification });
    const stranger = h.client({ tenantId: "t-stranger", roles: ["admin"] });
    expect((await rejection(stranger.getDecision({ decisionId: row.decision_id }))).code).toBe(Code.NotFound);
    expect((await rejection(stranger.resolveDecision({ decisionId: row.decision_id, action: DecisionAction.DENY, justification }))).code).toBe(Code.NotFound);
    expect((await rejection(stranger.consumeDecision({ decisionId: row.decision_id, decisionToken }))).code).toBe(Code.NotFound);
    // Its own decision's id with the other tenant's token: the token names a decision that does not
    // exist for this tenant, so it answers as one (not a 403 telling the tenants apart).
    const mine = await pending("t-stranger");
    const mismatch = await rejection(stranger.consumeDecision({ decisionId: mine.decision_id, decisionToken }));
    expect(mismatch.code).toBe(Code.NotFound);
    expect((await stranger.listDecisions({})).decisions.map((d) => d.decisionId)).toEqual([mine.decision_id]);
  });

  it("pages the pending queue oldest first with a cursor", async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await pending("t-page")).decision_id);
    const admin = h.client({ tenantId: "t-page", roles: ["admin"] });
    const first = await admin.listDecisions({ limit: 2 });
    expect(first.decisions.map((d) => d.decisionId)).toEqual(ids.slice(0, 2));
    expect(first.hasMore).toBe(true);
    const second = await admin.listDecisions({ limit: 3, cursor: first.nextCursor });
    expect(second.decisions.map((d) => d.decisionId)).toEqual(ids.slice(2));
    expect(second).toMatchObject({ hasMore: false, nextCursor: "" });
    expect(errorInfoOf(await rejection(admin.listDecisions({ cursor: "garbage" })))?.field).toBe("cursor");
  });
});
