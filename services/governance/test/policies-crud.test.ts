import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorInfoOf } from "@clasper/core";
import { testBackendFromEnv } from "@clasper/db/testing";
import { DecisionEffect, PolicySubjectType, PolicyTraceResult, RiskLevel, SkillState } from "@clasper/proto";
import { listAuditEntries } from "../src/store/audit.js";
import { rejection, usePoliciesHarness } from "./policies-support.js";

const h = usePoliciesHarness();

const denyDeleteInProd = {
  policyId: "deny-delete-prod",
  scope: { environment: "prod" },
  subject: { type: PolicySubjectType.TOOL, name: "delete_file" },
  effect: { decision: DecisionEffect.DENY },
  explanation: "No deletes in prod",
  precedence: 10,
};

describe(`policy CRUD and dry-run (${testBackendFromEnv()})`, () => {
  it("creates, replaces, lists, patches and deletes a tenant's policy, auditing each change", async () => {
    const admin = h.client({ tenantId: "t-crud", userId: "alice" });
    const created = await admin.upsertPolicy(denyDeleteInProd);
    expect(created.created).toBe(true);
    expect(created.policy).toMatchObject({ policyId: "deny-delete-prod", precedence: 10, enabled: true, updatedBy: "alice", explanation: "No deletes in prod" });
    expect(created.policy?.scope?.environment).toBe("prod");
    const replaced = await admin.upsertPolicy({ ...denyDeleteInProd, precedence: 20, conditions: { riskLevel: RiskLevel.HIGH, minCostMicros: 5n } });
    expect(replaced.created).toBe(false);
    expect(replaced.policy?.conditions).toMatchObject({ riskLevel: RiskLevel.HIGH, minCostMicros: 5n });

    await admin.upsertPolicy({ policyId: "skill-approval", subject: { type: PolicySubjectType.SKILL, name: "billing" }, effect: { decision: DecisionEffect.REQUIRE_APPROVAL } });
    const listed = await admin.listPolicies({});
    expect(listed.policies.map((p) => p.policyId)).toEqual(["deny-delete-prod", "skill-approval"]);
    expect((await admin.listPolicies({ environment: "dev" })).policies.map((p) => p.policyId)).toEqual(["skill-approval"]);

    const patched = await admin.updatePolicy({ policyId: "deny-delete-prod", enabled: false });
    expect(patched.policy).toMatchObject({ enabled: false, precedence: 20 });
    expect((await admin.listPolicies({ enabled: false })).policies.map((p) => p.policyId)).toEqual(["deny-delete-prod"]);

    expect((await admin.deletePolicy({ policyId: "deny-delete-prod" })).policyId).toBe("deny-delete-prod");
    expect((await admin.listPolicies({})).policies.map((p) => p.policyId)).toEqual(["skill-approval"]);

    const audit = await listAuditEntries(h.db, "t-crud", { eventType: "config_change" }, { limit: 10 });
    expect(audit.entries.map((e) => (e.data as { action: string }).action).reverse()).toEqual([
      "policy_created",
      "policy_updated",
      "policy_created",
      "policy_updated",
      "policy_deleted",
    ]);
    expect(audit.entries[0]).toMatchObject({ actor: "alice" });
  });

  it("answers 404 for another tenant's policy and never lists it", async () => {
    await h.client({ tenantId: "t-owner" }).upsertPolicy({ ...denyDeleteInProd, policyId: "owned" });
    const other = h.client({ tenantId: "t-other" });
    expect((await rejection(other.updatePolicy({ policyId: "owned", enabled: false }))).code).toBe(Code.NotFound);
    expect((await rejection(other.deletePolicy({ policyId: "owned" }))).code).toBe(Code.NotFound);
    expect((await other.listPolicies({})).policies).toEqual([]);
    expect((await other.dryRunPolicy({ environment: "prod", tool: "delete_file" })).decision).toBe(DecisionEffect.ALLOW);
  });

  it("rejects bad input naming the field", async () => {
    const admin = h.client({ tenantId: "t-bad" });
    const noSubject = await rejection(admin.upsertPolicy({ policyId: "x", effect: { decision: DecisionEffect.DENY } }));
    expect(noSubject.code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(noSubject)?.field).toBe("subject");
    const badId = await rejection(admin.upsertPolicy({ ...denyDeleteInProd, policyId: "has space" }));
    expect(errorInfoOf(badId)?.field).toBe("policy_id");
    const range = await rejection(admin.upsertPolicy({ ...denyDeleteInProd, conditions: { minCostMicros: 10n, maxCostMicros: 5n } }));
    expect(errorInfoOf(range)?.field).toBe("conditions.min_cost_micros");
    const precedence = await rejection(admin.updatePolicy({ policyId: "x", precedence: 5000 }));
    expect(errorInfoOf(precedence)?.field).toBe("precedence");
    const nothing = await rejection(admin.updatePolicy({ policyId: "x" }));
    expect(nothing.code).toBe(Code.InvalidArgument);
  });

  it("lets operators view and dry-run but only release managers change policies", async () => {
    const operator = h.client({ tenantId: "t-rbac", roles: ["operator"] });
    expect((await rejection(operator.upsertPolicy(denyDeleteInProd))).code).toBe(Code.PermissionDenied);
    expect((await rejection(h.client({ tenantId: "t-rbac", roles: ["viewer"] }).listPolicies({}))).code).toBe(Code.PermissionDenied);
    await h.client({ tenantId: "t-rbac", roles: ["release_manager"] }).upsertPolicy(denyDeleteInProd);
    expect((await operator.listPolicies({})).policies).toHaveLength(1);
  });

  it("dry-runs a context and traces every candidate in scope", async () => {
    const admin = h.client({ tenantId: "t-dry" });
    await admin.upsertPolicy(denyDeleteInProd);
    await admin.upsertPolicy({ policyId: "draft-needs-approval", subject: { type: PolicySubjectType.SKILL }, conditions: { skillState: SkillState.DRAFT }, effect: { decision: DecisionEffect.REQUIRE_APPROVAL }, explanation: "Draft skills need a review" });
    await admin.upsertPolicy({ policyId: "staging-only", scope: { environment: "staging" }, subject: { type: PolicySubjectType.COST }, effect: { decision: DecisionEffect.DENY } });

    const denied = await admin.dryRunPolicy({ environment: "prod", tool: "delete_file", skillName: "files", skillState: SkillState.DRAFT });
    expect(denied).toMatchObject({ decision: DecisionEffect.DENY, matchedPolicies: ["deny-delete-prod", "draft-needs-approval"], explanation: "No deletes in prod" });
    // staging-only is out of scope for a prod context, so it is not a candidate at all.
    expect(denied.decisionTrace.map((t) => [t.policyId, t.result])).toEqual([
      ["deny-delete-prod", PolicyTraceResult.MATCHED],
      ["draft-needs-approval", PolicyTraceResult.MATCHED],
    ]);

    const approval = await admin.dryRunPolicy({ environment: "prod", tool: "read_file", skillName: "files", skillState: SkillState.DRAFT });
    expect(approval.decision).toBe(DecisionEffect.REQUIRE_APPROVAL);
    expect(approval.decisionTrace.find((t) => t.policyId === "deny-delete-prod")).toMatchObject({ result: PolicyTraceResult.SKIPPED, reason: "subject.name mismatch" });

    const none = await admin.dryRunPolicy({ environment: "prod" });
    expect(none).toMatchObject({ decision: DecisionEffect.ALLOW, matchedPolicies: [], explanation: "No matching policy" });
    // A dry run changes nothing.
    expect((await listAuditEntries(h.db, "t-dry", { eventType: "execution_denied" }, { limit: 1 })).total).toBe(0);
  });
});
