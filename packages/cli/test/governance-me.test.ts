import { describe, expect, it } from "vitest";
import { useOneProcess } from "./support/system.js";

const sys = useOneProcess();

describe("GET /ops/api/me through the gateway", () => {
  it("answers each role with its resolved permissions", async () => {
    const seen: Record<string, string[]> = {};
    for (const role of ["viewer", "operator", "release_manager", "admin"]) {
      const token = await sys.token({ tenant_id: "me-a", user_id: `u-${role}`, roles: [role] });
      const res = await sys.call("GET", "/ops/api/me", { token });
      expect(res.status).toBe(200);
      expect(res.body.user).toMatchObject({ id: `u-${role}`, tenant_id: "me-a", workspace_id: "", role, roles: [role] });
      expect(res.body.scope).toEqual({ workspaces: [] });
      expect(res.body.permissions).toEqual([...res.body.permissions].sort());
      seen[role] = res.body.permissions;
    }
    expect(seen.viewer).toEqual(["dashboard:view", "skill:view", "trace:view", "workspace:view"]);
    expect(seen.operator).toContain("budget:view");
    expect(seen.operator).not.toContain("policy:manage");
    expect(seen.release_manager).toEqual(expect.arrayContaining(["policy:manage", "override:use", "decision:resolve"]));
    expect(seen.release_manager).not.toContain("skill:promote");
    expect(seen.admin).toEqual(expect.arrayContaining([...seen.release_manager!, "skill:promote", "trace:view_payloads"]));
  });

  it("reports the highest of several roles, unknown roles dropped, and the workspace scope", async () => {
    const token = await sys.token({ tenant_id: "me-a", roles: ["viewer", "release_manager", "superuser"], workspace_id: "ws-9" });
    const res = await sys.call("GET", "/ops/api/me", { token });
    expect(res.body.user).toMatchObject({ role: "release_manager", roles: ["viewer", "release_manager"], workspace_id: "ws-9" });
    expect(res.body.scope).toEqual({ workspaces: ["ws-9"] });
  });

  it("refuses anonymous callers and query parameters", async () => {
    expect((await sys.call("GET", "/ops/api/me")).status).toBe(401);
    const token = await sys.token({ tenant_id: "me-a" });
    const res = await sys.call("GET", "/ops/api/me?tenant_id=other", { token });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe("tenant_id");
  });
});

describe("/ops/api/redaction-rules through the gateway", () => {
  it("round-trips the rules, bumping the version on every change", async () => {
    const rm = await sys.token({ tenant_id: "red-a", user_id: "rm-1", roles: ["release_manager"] });
    const before = await sys.call("GET", "/ops/api/redaction-rules", { token: rm });
    expect(before.status).toBe(200);
    expect(before.body.rules).toMatchObject({ enabled: true, pii_patterns: [], strategy: "mask", custom_rules: [], version: "0" });

    const body = {
      pii_patterns: ["email", "credit_card"],
      strategy: "hash",
      custom_rules: [{ name: "ticket_id", regex: "TCK-[0-9]{6}", strategy: "mask", replacement: "[TICKET]" }],
    };
    const put = await sys.call("PUT", "/ops/api/redaction-rules", { token: rm, body });
    expect(put.status).toBe(200);
    expect(put.body.rules).toMatchObject({ ...body, enabled: true, version: "1", updated_by: "rm-1" });
    expect(Date.parse(put.body.rules.updated_at)).not.toBeNaN();

    const again = await sys.call("PUT", "/ops/api/redaction-rules", { token: rm, body: { enabled: false, expected_version: 1 } });
    expect(again.body.rules).toMatchObject({ enabled: false, pii_patterns: [], custom_rules: [], version: "2" });

    // An operator reads (policy:view) what the trace service will apply.
    const operator = await sys.token({ tenant_id: "red-a", roles: ["operator"] });
    const read = await sys.call("GET", "/ops/api/redaction-rules", { token: operator });
    expect(read.body.rules).toEqual(again.body.rules);
  });

  it("refuses a stale expected_version with 409", async () => {
    const rm = await sys.token({ tenant_id: "red-cas", roles: ["release_manager"] });
    await sys.call("PUT", "/ops/api/redaction-rules", { token: rm, body: {} });
    await sys.call("PUT", "/ops/api/redaction-rules", { token: rm, body: { expected_version: 1 } });
    const stale = await sys.call("PUT", "/ops/api/redaction-rules", { token: rm, body: { enabled: false, expected_version: 1 } });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: "version_conflict", field: "expected_version" });
  });

  it("rejects invalid rules naming the rule index and field", async () => {
    const rm = await sys.token({ tenant_id: "red-bad", roles: ["release_manager"] });
    const cases: [unknown, string][] = [
      [{ custom_rules: [{ name: "ok", regex: "a+" }, { name: "broken", regex: "(unclosed" }] }, "custom_rules[1].regex"],
      [{ custom_rules: [{ name: "lookahead", regex: "a(?=b)" }] }, "custom_rules[0].regex"],
      [{ custom_rules: [{ name: "Bad-Name", regex: "a+" }] }, "custom_rules[0].name"],
      [{ custom_rules: [{ name: "dup", regex: "a+" }, { name: "dup", regex: "b+" }] }, "custom_rules[1].name"],
      [{ pii_patterns: ["email", "email"] }, "pii_patterns"],
      [{ pii_patterns: ["passport"] }, "pii_patterns[0]"],
      [{ strategy: "blur" }, "strategy"],
    ];
    for (const [body, field] of cases) {
      const res = await sys.call("PUT", "/ops/api/redaction-rules", { token: rm, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field, JSON.stringify(res.body)).toBe(field);
    }
    const after = await sys.call("GET", "/ops/api/redaction-rules", { token: rm });
    expect(after.body.rules.version).toBe("0");
  });

  it("keeps tenants apart", async () => {
    const a = await sys.token({ tenant_id: "red-iso-a", roles: ["admin"] });
    const b = await sys.token({ tenant_id: "red-iso-b", roles: ["admin"] });
    await sys.call("PUT", "/ops/api/redaction-rules", { token: a, body: { strategy: "drop" } });
    const bView = await sys.call("GET", "/ops/api/redaction-rules", { token: b });
    expect(bView.body.rules).toMatchObject({ strategy: "mask", version: "0" });
    const forged = await sys.call("PUT", "/ops/api/redaction-rules", { token: b, body: { tenant_id: "red-iso-a", strategy: "hash" } });
    expect(forged.status).toBe(400);
    expect(forged.body.error.field).toBe("tenant_id");
    const aView = await sys.call("GET", "/ops/api/redaction-rules", { token: a });
    expect(aView.body.rules).toMatchObject({ strategy: "drop", version: "1" });
  });

  it("enforces RBAC: a viewer cannot read, an operator cannot change", async () => {
    const viewer = await sys.token({ tenant_id: "red-rbac", roles: ["viewer"] });
    const read = await sys.call("GET", "/ops/api/redaction-rules", { token: viewer });
    expect(read.status).toBe(403);
    expect(read.body.error.message).toContain("policy:view");
    const operator = await sys.token({ tenant_id: "red-rbac", roles: ["operator"] });
    const write = await sys.call("PUT", "/ops/api/redaction-rules", { token: operator, body: { strategy: "drop" } });
    expect(write.status).toBe(403);
    expect(write.body.error.message).toContain("policy:manage");
  });
});
