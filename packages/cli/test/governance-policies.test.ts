import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOneProcess, type TestSystem } from "./support/system.js";

let sys: TestSystem;
beforeAll(async () => {
  sys = await startOneProcess();
});
afterAll(async () => {
  await sys?.stop();
});

const policy = {
  policy_id: "deny-delete-prod",
  scope: { environment: "prod" },
  subject: { type: "tool", name: "delete_file" },
  conditions: { min_cost_micros: "0" },
  effect: { decision: "deny" },
  explanation: "No deletes in prod",
  precedence: 10,
};

describe("policies and decisions through the gateway", () => {
  it("creates, lists, dry-runs, patches and deletes a policy", async () => {
    const token = await sys.token({ tenant_id: "pol-a", roles: ["release_manager"] });
    const created = await sys.call("POST", "/ops/api/policies", { token, body: policy });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ created: true, policy: { policy_id: "deny-delete-prod", subject: { type: "tool", name: "delete_file" }, effect: { decision: "deny" }, enabled: true } });

    const listed = await sys.call("GET", "/ops/api/policies?environment=prod", { token });
    expect(listed.body.policies.map((p: { policy_id: string }) => p.policy_id)).toEqual(["deny-delete-prod"]);

    const dry = await sys.call("POST", "/api/policy/dry-run", { token, body: { environment: "prod", tool: "delete_file", estimated_cost_micros: "10" } });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ decision: "deny", matched_policies: ["deny-delete-prod"], explanation: "No deletes in prod" });
    expect(dry.body.decision_trace).toEqual([{ policy_id: "deny-delete-prod", result: "matched", decision: "deny", explanation: "No deletes in prod", reason: "" }]);
    const opsDry = await sys.call("POST", "/ops/api/policies/dry-run", { token, body: { environment: "prod", tool: "read_file" } });
    expect(opsDry.body).toMatchObject({ decision: "allow", explanation: "No matching policy" });

    const patched = await sys.call("PATCH", "/ops/api/policies/deny-delete-prod", { token, body: { enabled: false } });
    expect(patched.status).toBe(200);
    expect(patched.body.policy.enabled).toBe(false);
    const deleted = await sys.call("DELETE", "/ops/api/policies/deny-delete-prod", { token });
    expect(deleted.body).toEqual({ policy_id: "deny-delete-prod" });
    expect((await sys.call("DELETE", "/ops/api/policies/deny-delete-prod", { token })).status).toBe(404);
  });

  it("answers 400 naming the field for bad input", async () => {
    const token = await sys.token({ tenant_id: "pol-bad", roles: ["admin"] });
    const noEffect = await sys.call("POST", "/ops/api/policies", { token, body: { ...policy, effect: undefined } });
    expect(noEffect.status).toBe(400);
    expect(noEffect.body.error.field).toBe("effect");
    const badSubject = await sys.call("POST", "/ops/api/policies", { token, body: { ...policy, subject: { type: "planet" } } });
    expect(badSubject.status).toBe(400);
    expect(badSubject.body.error.field).toContain("subject");
    const precedence = await sys.call("POST", "/ops/api/policies", { token, body: { ...policy, precedence: 5000 } });
    expect(precedence.body.error.field).toBe("precedence");
    const resolve = await sys.call("POST", `/ops/api/decisions/${randomUUID()}/resolve`, { token, body: { action: "approve", justification: "short" } });
    expect(resolve.status).toBe(400);
    expect(resolve.body.error.field).toBe("justification");
    const consume = await sys.call("POST", `/api/decisions/${randomUUID()}/consume`, { token, body: {} });
    expect(consume.status).toBe(400);
    expect(consume.body.error.field).toBe("decision_token");
    const listing = await sys.call("GET", "/ops/api/decisions?limit=500", { token });
    expect(listing.body.error.field).toBe("limit");
  });

  it("answers 404 for another tenant's policy or decision", async () => {
    const owner = await sys.token({ tenant_id: "pol-owner", roles: ["admin"] });
    await sys.call("POST", "/ops/api/policies", { token: owner, body: policy });
    const other = await sys.token({ tenant_id: "pol-other", roles: ["admin"] });
    expect((await sys.call("PATCH", "/ops/api/policies/deny-delete-prod", { token: other, body: { enabled: false } })).status).toBe(404);
    expect((await sys.call("DELETE", "/ops/api/policies/deny-delete-prod", { token: other })).status).toBe(404);
    expect((await sys.call("GET", "/ops/api/policies", { token: other })).body.policies).toEqual([]);
    const missing = await sys.call("GET", `/api/decisions/${randomUUID()}`, { token: other });
    expect(missing.status).toBe(404);
    expect((await sys.call("POST", `/api/decisions/${randomUUID()}/resolve`, { token: other, body: { action: "deny", justification: "not this one, sorry" } })).status).toBe(404);
    expect((await sys.call("GET", "/ops/api/decisions", { token: other })).body).toMatchObject({ decisions: [], has_more: false });
  });

  it("enforces RBAC: 403 for roles below the route's permission", async () => {
    const viewer = await sys.token({ tenant_id: "pol-rbac", roles: ["viewer"] });
    const operator = await sys.token({ tenant_id: "pol-rbac", roles: ["operator"] });
    expect((await sys.call("GET", "/ops/api/policies", { token: viewer })).status).toBe(403);
    expect((await sys.call("POST", "/api/policy/dry-run", { token: viewer, body: {} })).status).toBe(403);
    expect((await sys.call("POST", "/ops/api/policies", { token: operator, body: policy })).status).toBe(403);
    expect((await sys.call("GET", "/ops/api/policies", { token: operator })).status).toBe(200);
    expect((await sys.call("GET", "/ops/api/decisions", { token: operator })).status).toBe(403);
    expect((await sys.call("POST", `/ops/api/decisions/${randomUUID()}/resolve`, { token: operator, body: { action: "approve", justification: "operator tries this" } })).status).toBe(403);
    expect((await sys.call("GET", `/api/decisions/${randomUUID()}`, { token: viewer })).status).toBe(403);
  });
});
