import { describe, expect, it } from "vitest";
import { evaluate, mismatch, NO_MATCH_EXPLANATION, specificity, type PolicyContext } from "../src/policy-engine.js";
import type { PolicyRow } from "../src/store/policies.js";

let clock = 0;
function policy(p: Partial<PolicyRow> & Pick<PolicyRow, "policy_id">): PolicyRow {
  clock += 1;
  return {
    tenant_id: "t",
    workspace_id: null,
    environment: null,
    subject_type: "cost",
    subject_name: null,
    conditions: {},
    effect: "allow",
    explanation: "",
    precedence: 0,
    enabled: true,
    created_at: new Date(clock),
    updated_at: new Date(clock),
    updated_by: "u",
    ...p,
  };
}

describe("policy matching", () => {
  const ctx: PolicyContext = {
    workspaceId: "ws1",
    environment: "prod",
    tool: "delete_file",
    skillName: "billing",
    skillState: "draft",
    riskLevel: "high",
    estimatedCostMicros: 5_000n,
    requestedCapabilities: ["llm", "tools"],
    context: { external_network: true, targets: ["a.example", "b.example"] },
    provenance: { source: "marketplace", publisher: "acme" },
    agentRole: "support",
  };

  it("matches a skill subject by skill name, not by state (the original's bug)", () => {
    expect(mismatch(policy({ policy_id: "p", subject_type: "skill", subject_name: "billing" }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", subject_type: "skill", subject_name: "draft" }), ctx)).toBe("subject.name mismatch");
  });

  it("matches each subject type against its context value; an empty name matches any value", () => {
    expect(mismatch(policy({ policy_id: "p", subject_type: "tool", subject_name: "delete_file" }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", subject_type: "tool" }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", subject_type: "risk", subject_name: "high" }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", subject_type: "agent", subject_name: "support" }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", subject_type: "environment", subject_name: "staging" }), ctx)).toBe("subject.name mismatch");
    // A tool policy never applies to an execution-level context without a tool.
    expect(mismatch(policy({ policy_id: "p", subject_type: "tool" }), { ...ctx, tool: undefined })).toBe("subject.type tool not in context");
  });

  it("requires every set condition; a missing context value never matches", () => {
    expect(mismatch(policy({ policy_id: "p", conditions: { min_cost_micros: "5000", max_cost_micros: "5000" } }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", conditions: { min_cost_micros: "5001" } }), ctx)).toBe("conditions.min_cost_micros mismatch");
    expect(mismatch(policy({ policy_id: "p", conditions: { max_cost_micros: "4999" } }), ctx)).toBe("conditions.max_cost_micros mismatch");
    expect(mismatch(policy({ policy_id: "p", conditions: { capability: "tools" } }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", conditions: { capability: "net" } }), ctx)).toBe("conditions.capability mismatch");
    expect(mismatch(policy({ policy_id: "p", conditions: { context: { external_network: true, targets: ["a.example"] } } }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", conditions: { context: { writes_files: false } } }), ctx)).toBe("conditions.context.writes_files mismatch");
    expect(mismatch(policy({ policy_id: "p", conditions: { provenance: { source: "marketplace" } } }), ctx)).toBeUndefined();
    expect(mismatch(policy({ policy_id: "p", conditions: { provenance: { publisher: "other" } } }), ctx)).toBe("conditions.provenance.publisher mismatch");
    expect(mismatch(policy({ policy_id: "p", conditions: { intent: "refund" } }), ctx)).toBe("conditions.intent mismatch");
    expect(mismatch(policy({ policy_id: "p", conditions: { min_cost_micros: "0" } }), { ...ctx, estimatedCostMicros: undefined })).toBe(
      "conditions.min_cost_micros mismatch",
    );
  });

  it("checks the scope", () => {
    expect(mismatch(policy({ policy_id: "p", workspace_id: "ws2" }), ctx)).toBe("scope.workspace_id mismatch");
    expect(mismatch(policy({ policy_id: "p", environment: "dev" }), ctx)).toBe("scope.environment mismatch");
    expect(mismatch(policy({ policy_id: "p", workspace_id: "ws1", environment: "prod" }), ctx)).toBeUndefined();
  });
});

describe("winner selection", () => {
  const ctx: PolicyContext = { workspaceId: "ws1", environment: "prod", estimatedCostMicros: 1n };

  it("allows with 'No matching policy' when nothing matches, tracing every skip", () => {
    const result = evaluate([policy({ policy_id: "tools", subject_type: "tool", effect: "deny" })], ctx);
    expect(result).toMatchObject({ decision: "allow", matchedPolicies: [], explanation: NO_MATCH_EXPLANATION });
    expect(result.decisionTrace).toEqual([{ policy_id: "tools", result: "skipped", reason: "subject.type tool not in context" }]);
  });

  it("higher precedence wins over specificity and restrictiveness", () => {
    const result = evaluate(
      [
        policy({ policy_id: "allow-high", precedence: 10, effect: "allow", explanation: "allowed" }),
        policy({ policy_id: "deny-specific", precedence: 5, workspace_id: "ws1", environment: "prod", effect: "deny" }),
      ],
      ctx,
    );
    expect(result).toMatchObject({ decision: "allow", matchedPolicies: ["allow-high", "deny-specific"], explanation: "allowed" });
  });

  it("on equal precedence the more specific scope wins", () => {
    expect(specificity({ workspace_id: "w", environment: "e" })).toBeGreaterThan(specificity({ workspace_id: "w", environment: null }));
    expect(specificity({ workspace_id: "w", environment: null })).toBeGreaterThan(specificity({ workspace_id: null, environment: "e" }));
    expect(specificity({ workspace_id: null, environment: "e" })).toBeGreaterThan(specificity({ workspace_id: null, environment: null }));
    const result = evaluate(
      [
        policy({ policy_id: "deny-all", effect: "deny" }),
        policy({ policy_id: "allow-ws", workspace_id: "ws1", effect: "allow" }),
        policy({ policy_id: "approve-env", environment: "prod", effect: "require_approval" }),
      ],
      ctx,
    );
    expect(result.decision).toBe("allow");
    expect(result.winner?.policy_id).toBe("allow-ws");
  });

  it("on equal precedence and specificity the most restrictive effect wins", () => {
    const result = evaluate(
      [
        policy({ policy_id: "a", effect: "allow" }),
        policy({ policy_id: "r", effect: "require_approval" }),
        policy({ policy_id: "d", effect: "deny", explanation: "no" }),
      ],
      ctx,
    );
    expect(result).toMatchObject({ decision: "deny", explanation: "no" });
    expect(evaluate([policy({ policy_id: "a", effect: "allow" }), policy({ policy_id: "r", effect: "require_approval" })], ctx).decision).toBe(
      "require_approval",
    );
  });

  it("never evaluates disabled policies", () => {
    const result = evaluate([policy({ policy_id: "off", effect: "deny", enabled: false })], ctx);
    expect(result).toMatchObject({ decision: "allow", decisionTrace: [] });
  });
});
