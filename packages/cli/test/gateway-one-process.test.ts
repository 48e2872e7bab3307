import { describe, expect, it } from "vitest";
import { useOneProcess } from "./support/system.js";

const sys = useOneProcess();

describe("one process: health, OpenAPI, metrics", () => {
  it("reports every component and the database on /health without a token", async () => {
    const { status, body } = await sys.call("GET", "/health");
    expect(status).toBe(200);
    expect(body.status).toBe("ok");
    expect(Object.keys(body.components).sort()).toEqual(["gateway", "governance", "registry", "runtime", "trace", "workspace"]);
    expect(body.database).toMatchObject({ status: "ok", kind: process.env.CLASPER_TEST_DB === "postgres" ? "postgres" : "pglite" });
  });

  it("serves an OpenAPI 3.1 document", async () => {
    const { status, body } = await sys.call("GET", "/openapi.json");
    expect(status).toBe(200);
    expect(body.openapi).toBe("3.1.0");
    expect(body.paths["/retention/policy"].post.requestBody.content["application/json"].schema.properties.sampling_strategy.enum).toEqual(["full", "sampled", "errors_only", null]);
  });

  it("exposes Prometheus metrics including the requests it served", async () => {
    await sys.call("GET", "/health");
    const { status, body } = await sys.call("GET", "/metrics");
    expect(status).toBe(200);
    expect(body).toMatch(/http_server_request_duration_seconds_count\{[^}]*method="GET",route="\/health",status_code="200"\} [1-9]/);
  });
});

describe("one process: the retention slice", () => {
  it("returns the default policy before one is set, then the stored one", async () => {
    const token = await sys.token({ tenant_id: "slice-tenant" });
    const before = await sys.call("GET", "/retention/policy", { token });
    expect(before.status).toBe(200);
    expect(before.body.policy).toMatchObject({ retention_days: 90, sampling_strategy: "full", storage_mode: "full", is_default: true });

    const set = await sys.call("POST", "/retention/policy", { token, body: { retention_days: 30, sampling_strategy: "errors_only" } });
    expect(set.status).toBe(200);
    expect(set.body.policy).toMatchObject({ retention_days: 30, sampling_strategy: "errors_only", storage_mode: "full", is_default: false });
    expect(Date.parse(set.body.policy.updated_at)).not.toBeNaN();

    // A partial update changes only what it names.
    const partial = await sys.call("POST", "/retention/policy", { token, body: { storage_mode: "summary" } });
    expect(partial.body.policy).toMatchObject({ retention_days: 30, sampling_strategy: "errors_only", storage_mode: "summary" });

    const after = await sys.call("GET", "/retention/policy", { token });
    expect(after.body.policy).toEqual(partial.body.policy);
  });

  it("keeps tenants apart: B neither reads nor overwrites A's policy", async () => {
    const a = await sys.token({ tenant_id: "tenant-iso-a" });
    const b = await sys.token({ tenant_id: "tenant-iso-b" });
    await sys.call("POST", "/retention/policy", { token: a, body: { retention_days: 7 } });
    const bView = await sys.call("GET", "/retention/policy", { token: b });
    expect(bView.body.policy).toMatchObject({ retention_days: 90, is_default: true });
    // A body naming another tenant is refused, not honoured.
    const forged = await sys.call("POST", "/retention/policy", { token: b, body: { tenant_id: "tenant-iso-a", retention_days: 1 } });
    expect(forged.status).toBe(400);
    expect(forged.body.error).toMatchObject({ code: "invalid_field", field: "tenant_id" });
    const forgedQuery = await sys.call("GET", "/retention/policy?tenant_id=tenant-iso-a", { token: b });
    expect(forgedQuery.status).toBe(400);
    await sys.call("POST", "/retention/policy", { token: b, body: { retention_days: 365 } });
    const aView = await sys.call("GET", "/retention/policy", { token: a });
    expect(aView.body.policy.retention_days).toBe(7);
  });

  it("enforces RBAC: a viewer may not change the policy", async () => {
    const viewer = await sys.token({ tenant_id: "rbac-tenant", roles: ["viewer"] });
    const res = await sys.call("POST", "/retention/policy", { token: viewer, body: { retention_days: 10 } });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("permission_denied");
    expect(res.body.error.message).toContain("retention:modify");
  });

  it("leaves the tenant-wide policy and its enforcement to tokens not bound to a workspace", async () => {
    const bound = await sys.token({ tenant_id: "ws-retention", workspace_id: "ws-a" });
    for (const [path, body] of [["/retention/policy", { retention_days: 10 }], ["/retention/enforce", { dry_run: false }]] as const) {
      const res = await sys.call("POST", path, { token: bound, body });
      expect(res.status, path).toBe(403);
      expect(res.body.error.code).toBe("workspace_access_denied");
    }
    const unbound = await sys.token({ tenant_id: "ws-retention" });
    expect((await sys.call("POST", "/retention/policy", { token: unbound, body: { retention_days: 10 } })).status).toBe(200);
    expect((await sys.call("GET", "/retention/policy", { token: bound })).body.policy.retention_days).toBe(10);
  });

  it.each([
    [{ retention_days: "thirty" }, "retention_days"],
    [{ retention_days: 0 }, "retention_days"],
    [{ retention_days: 3651 }, "retention_days"],
    [{ retention_days: 12.5 }, "retention_days"],
    [{ sampling_strategy: "random" }, "sampling_strategy"],
    [{ storage_mode: 7 }, "storage_mode"],
    [{ sample_rate: 1.5 }, "sample_rate"],
    [{ sample_rate: "half" }, "sample_rate"],
    [{ unknown_setting: true }, "unknown_setting"],
  ])("answers 400 naming the field for %j", async (body, field) => {
    const token = await sys.token();
    const res = await sys.call("POST", "/retention/policy", { token, body });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe(field);
    expect(typeof res.body.error.message).toBe("string");
  });

  it("refuses text PostgreSQL cannot store (U+0000) with 400 naming the field, in a query and in a body", async () => {
    const token = await sys.token();
    const query = await sys.call("GET", "/traces?workspace_id=ws%00", { token });
    expect(query.status).toBe(400);
    expect(query.body.error).toMatchObject({ code: "invalid_field", field: "workspace_id" });
    const body = await sys.call("POST", `/traces/${"a".repeat(32)}/label`, { token, body: { labels: { env: "prod\u0000" } } });
    expect(body.status).toBe(400);
    expect(body.body.error).toMatchObject({ code: "invalid_field", field: 'labels["env"]' });
  });

  it("rejects malformed JSON, non-object bodies and oversize bodies", async () => {
    const token = await sys.token();
    const malformed = await sys.call("POST", "/retention/policy", { token, rawBody: '{"retention_days": 3', headers: { "content-type": "application/json" } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe("malformed_json");
    const array = await sys.call("POST", "/retention/policy", { token, body: [1, 2] });
    expect(array.status).toBe(400);
    const huge = await sys.call("POST", "/retention/policy", { token, rawBody: JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) }) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe("payload_too_large");
    const polluted = await sys.call("POST", "/retention/policy", { token, rawBody: '{"__proto__": {"retention_days": 1}}' });
    expect(polluted.status).toBe(400);
    expect(polluted.body.error.field).toBe("__proto__");
  });
});

describe("one process: routing", () => {
  it("answers unknown routes with 404 JSON and wrong methods with 405", async () => {
    const token = await sys.token();
    const missing = await sys.call("GET", "/no/such/route", { token });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("route_not_found");
    const wrongMethod = await sys.call("DELETE", "/retention/policy", { token });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toContain("POST");
  });

  it("does not take a literal path segment for a parameter its field's pattern refuses", async () => {
    const token = await sys.token();
    // /traces/diff is POST only; "diff" cannot be a trace id, so GET /traces/{trace_id} does not claim it.
    const get = await sys.call("GET", "/traces/diff", { token });
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    // A malformed id on a path only the parameterized route has is that route's 400, naming the field.
    const malformed = await sys.call("GET", "/traces/not-a-trace-id", { token });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.field).toBe("trace_id");
  });

  it("answers endpoints that are not built yet with 501 naming the endpoint", async () => {
    const token = await sys.token();
    // The registry is built by a later issue; its routes exist and say so.
    const res = await sys.call("GET", "/skills/registry?limit=5", { token });
    expect(res.status).toBe(501);
    expect(res.body.error).toEqual({ code: "not_implemented", message: "GET /skills/registry is not available yet" });
  });
});
