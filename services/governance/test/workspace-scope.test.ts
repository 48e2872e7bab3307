import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorInfoOf } from "@clasper/core";
import { testBackendFromEnv } from "@clasper/db/testing";
import { AuditEventType, DecisionEffect, PolicySubjectType, SkillState } from "@clasper/proto";
import { appendAudit } from "../src/store/audit.js";
import { findPolicy } from "../src/store/policies.js";
import { rejection, usePoliciesHarness } from "./policies-support.js";

const h = usePoliciesHarness();

/** A deny-everything policy, scoped to `workspaceId` (tenant-wide without). */
const freeze = (policyId: string, workspaceId?: string) => ({
  policyId,
  ...(workspaceId ? { scope: { workspaceId } } : {}),
  subject: { type: PolicySubjectType.COST },
  effect: { decision: DecisionEffect.DENY },
  explanation: `frozen: ${policyId}`,
});

const expectWorkspaceDenied = async (promise: Promise<unknown>, field?: string) => {
  const err = await rejection(promise);
  expect(err.code).toBe(Code.PermissionDenied);
  expect(errorInfoOf(err)?.code).toBe("workspace_access_denied");
  if (field) expect(errorInfoOf(err)?.field).toBe(field);
};

describe(`a token bound to a workspace, in governance (${testBackendFromEnv()})`, () => {
  it("lists its workspace's and the tenant-wide policies, never another workspace's", async () => {
    const admin = h.client({ tenantId: "t-ws-list" });
    await admin.upsertPolicy(freeze("all"));
    await admin.upsertPolicy(freeze("mine", "ws-a"));
    await admin.upsertPolicy(freeze("theirs", "ws-b"));
    const bound = h.client({ tenantId: "t-ws-list", workspaceId: "ws-a" });
    expect((await bound.listPolicies({})).policies.map((p) => p.policyId).sort()).toEqual(["all", "mine"]);
    await expectWorkspaceDenied(bound.listPolicies({ workspaceId: "ws-b" }), "workspace_id");
    // Unbound, the tenant's admin still sees all three.
    expect((await admin.listPolicies({})).policies).toHaveLength(3);
  });

  it("writes policies of its workspace only, and cannot take over another's id", async () => {
    const admin = h.client({ tenantId: "t-ws-write" });
    await admin.upsertPolicy(freeze("theirs", "ws-b"));
    await admin.upsertPolicy(freeze("tenant-wide"));
    const bound = h.client({ tenantId: "t-ws-write", workspaceId: "ws-a" });
    await expectWorkspaceDenied(bound.upsertPolicy(freeze("new")), "scope.workspace_id");
    await expectWorkspaceDenied(bound.upsertPolicy(freeze("new", "ws-b")), "scope.workspace_id");
    // The id of another workspace's policy: refused in the same statement, the policy unchanged.
    await expectWorkspaceDenied(bound.upsertPolicy({ ...freeze("theirs", "ws-a"), explanation: "hijacked" }), "policy_id");
    expect(await findPolicy(h.db, "t-ws-write", "theirs")).toMatchObject({ workspace_id: "ws-b", explanation: "frozen: theirs" });
    expect((await bound.upsertPolicy(freeze("mine", "ws-a"))).created).toBe(true);
    // Another workspace's policy does not exist for it; a tenant-wide one is visible but not its to change.
    expect((await rejection(bound.updatePolicy({ policyId: "theirs", enabled: false }))).code).toBe(Code.NotFound);
    expect((await rejection(bound.deletePolicy({ policyId: "theirs" }))).code).toBe(Code.NotFound);
    await expectWorkspaceDenied(bound.updatePolicy({ policyId: "tenant-wide", enabled: false }), "policy_id");
    await expectWorkspaceDenied(bound.deletePolicy({ policyId: "tenant-wide" }), "policy_id");
    expect(await findPolicy(h.db, "t-ws-write", "tenant-wide")).toMatchObject({ enabled: true });
    expect((await bound.updatePolicy({ policyId: "mine", enabled: false })).policy?.enabled).toBe(false);
    expect((await bound.deletePolicy({ policyId: "mine" })).policyId).toBe("mine");
  });

  it("dry-runs in its own workspace: another's is refused, its own policies apply when it names none", async () => {
    const admin = h.client({ tenantId: "t-ws-dry" });
    await admin.upsertPolicy(freeze("b-frozen", "ws-b"));
    await admin.upsertPolicy(freeze("a-frozen", "ws-a"));
    const bound = h.client({ tenantId: "t-ws-dry", workspaceId: "ws-a" });
    await expectWorkspaceDenied(bound.dryRunPolicy({ workspaceId: "ws-b" }), "workspace_id");
    const own = await bound.dryRunPolicy({});
    expect(own.decision).toBe(DecisionEffect.DENY);
    expect(own.matchedPolicies).toEqual(["a-frozen"]);
    expect(JSON.stringify(own)).not.toContain("b-frozen");
  });

  it("preflights in its own workspace when the request names none: that workspace's policies apply", async () => {
    await h.client({ tenantId: "t-ws-pre" }).upsertPolicy(freeze("a-frozen", "ws-a"));
    const request = { executionId: "exec-ws-pre", permission: "agent:execute", environment: "prod", estimatedCostMicros: 1_000n, skillState: SkillState.ACTIVE };
    const res = await h.client({ tenantId: "t-ws-pre", roles: ["operator"], workspaceId: "ws-a" }).preflight(request);
    expect(res.decision).toBe(DecisionEffect.DENY);
    expect(res.matchedPolicies).toEqual(["a-frozen"]);
    const tool = await h
      .client({ tenantId: "t-ws-pre", roles: ["operator"], workspaceId: "ws-a" })
      .authorizeToolCall({ executionId: "exec-ws-tool", toolName: "read_file", environment: "prod" });
    expect(tool.decision).toBe(DecisionEffect.DENY);
  });

  it("sees no decision outside its workspace, including one of an execution that named none", async () => {
    const tenant = "t-ws-dec";
    await h.client({ tenantId: tenant }).upsertPolicy({ policyId: "review", subject: { type: PolicySubjectType.COST }, effect: { decision: DecisionEffect.REQUIRE_APPROVAL } });
    const unscoped = await h.client({ tenantId: tenant, roles: ["operator"] }).preflight({ executionId: "exec-none", permission: "agent:execute", estimatedCostMicros: 1n });
    const scoped = await h.client({ tenantId: tenant, roles: ["operator"], workspaceId: "ws-a" }).preflight({ executionId: "exec-a", permission: "agent:execute", estimatedCostMicros: 1n });
    const bound = h.client({ tenantId: tenant, workspaceId: "ws-a" });
    expect((await bound.listDecisions({})).decisions.map((d) => d.decisionId)).toEqual([scoped.decisionId]);
    expect((await bound.getDecision({ decisionId: scoped.decisionId })).decision?.workspaceId).toBe("ws-a");
    expect((await rejection(bound.getDecision({ decisionId: unscoped.decisionId }))).code).toBe(Code.NotFound);
  });

  it("cannot change what applies to every workspace of its tenant: budget, redaction rules", async () => {
    const bound = h.client({ tenantId: "t-ws-wide", workspaceId: "ws-a" });
    await expectWorkspaceDenied(bound.setBudget({ limitMicros: 5_000_000n }));
    await expectWorkspaceDenied(bound.updateRedactionRules({ enabled: false }));
    const unbound = h.client({ tenantId: "t-ws-wide" });
    expect((await unbound.setBudget({ limitMicros: 5_000_000n })).budget?.limitMicros).toBe(5_000_000n);
    expect((await unbound.updateRedactionRules({ enabled: false })).rules?.enabled).toBe(false);
    // Reading them is not an action on other workspaces.
    expect((await bound.getBudget({})).budget?.limitMicros).toBe(5_000_000n);
  });

  it("reads its workspace's audit entries and statistics, and not the tenant's whole chain", async () => {
    const tenant = "t-ws-audit";
    await appendAudit(h.db, tenant, { eventType: "config_change", workspaceId: "ws-a", actor: "u", data: { n: 1 } });
    await appendAudit(h.db, tenant, { eventType: "config_change", workspaceId: "ws-b", actor: "u", data: { n: 2 } });
    await appendAudit(h.db, tenant, { eventType: "budget_warning", actor: "u", data: { n: 3 } });
    const bound = h.client({ tenantId: tenant, workspaceId: "ws-a" });
    const listed = await bound.listAuditEntries({});
    expect(listed.entries.map((e) => e.workspaceId)).toEqual(["ws-a"]);
    await expectWorkspaceDenied(bound.listAuditEntries({ workspaceId: "ws-b" }), "workspace_id");
    expect((await bound.getAuditStats({})).stats?.totalEntries).toBe(1n);
    await expectWorkspaceDenied(bound.verifyAuditChain({}));
    await expectWorkspaceDenied(bound.exportAuditChain({}));
    const whole = h.client({ tenantId: tenant });
    expect((await whole.listAuditEntries({ eventType: AuditEventType.UNSPECIFIED })).entries).toHaveLength(3);
    expect((await whole.verifyAuditChain({})).verification).toMatchObject({ ok: true, checkedCount: 3n });
  });
});
