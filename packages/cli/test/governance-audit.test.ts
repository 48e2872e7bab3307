import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kysely } from "kysely";
import { appendAudit } from "@clasper/service-governance";
import { startOneProcess, type TestSystem } from "./support/system.js";

let sys: TestSystem;
let governanceDb: Kysely<any>;
let operatorA: string;
beforeAll(async () => {
  sys = await startOneProcess();
  // AppendAudit is internal (no REST route); services append in process, as the system test does here.
  governanceDb = sys.system.database.forSchema("governance");
  for (let i = 1; i <= 5; i++) {
    await appendAudit(governanceDb, "audit-a", {
      eventType: i % 2 === 0 ? "budget_warning" : "config_change",
      workspaceId: i <= 2 ? "ws-1" : "ws-2",
      traceId: `trace-${i}`,
      actor: "service:runtime",
      data: { i },
    });
  }
  await appendAudit(governanceDb, "audit-b", { eventType: "auth_failure", data: { secret_of_b: true } });
  operatorA = await sys.token({ tenant_id: "audit-a", roles: ["operator"] });
});
afterAll(async () => {
  await sys?.stop();
});

describe("governance audit through the gateway", () => {
  it("GET /audit lists the tenant's entries newest first, filtered and paged by cursor", async () => {
    const page = await sys.call("GET", "/audit?limit=2", { token: operatorA });
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ total: 5, has_more: true });
    expect(page.body.entries.map((e: { seq: string }) => e.seq)).toEqual(["5", "4"]);
    expect(page.body.entries[1]).toMatchObject({ event_type: "budget_warning", workspace_id: "ws-2", trace_id: "trace-4", user_id: "service:runtime", event_data: { i: 4 } });
    expect(page.body.entries[0].prev_event_hash).toBe(page.body.entries[1].event_hash);

    const next = await sys.call("GET", `/audit?limit=2&cursor=${page.body.next_cursor}`, { token: operatorA });
    expect(next.body.entries.map((e: { seq: string }) => e.seq)).toEqual(["3", "2"]);

    const filtered = await sys.call("GET", "/ops/api/audit?event_type=config_change&workspace_id=ws-2", { token: operatorA });
    expect(filtered.status).toBe(200);
    expect(filtered.body.entries.map((e: { seq: string }) => e.seq)).toEqual(["5", "3"]);
    const byTrace = await sys.call("GET", "/audit?trace_id=trace-1", { token: operatorA });
    expect(byTrace.body.entries.map((e: { seq: string }) => e.seq)).toEqual(["1"]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const window = await sys.call("GET", `/audit?start_time=2020-01-01T00:00:00Z&end_time=${future}`, { token: operatorA });
    expect(window.body.total).toBe(5);
  });

  it("GET /audit/stats counts per type", async () => {
    const res = await sys.call("GET", "/audit/stats", { token: operatorA });
    expect(res.status).toBe(200);
    expect(res.body.stats).toMatchObject({ total_entries: "5", entries_by_type: { config_change: "3", budget_warning: "2" } });
    expect(Date.parse(res.body.stats.oldest_entry_at)).not.toBeNaN();
  });

  it("GET /audit/verify and the export report an intact chain with its head", async () => {
    const verify = await sys.call("GET", "/audit/verify", { token: operatorA });
    expect(verify.status).toBe(200);
    expect(verify.body.verification).toMatchObject({ ok: true, first_broken_seq: "0", failures: [], checked_count: "5", head_seq: "5" });
    const exported = await sys.call("GET", "/ops/api/audit-chain/export?limit=3", { token: operatorA });
    expect(exported.status).toBe(200);
    expect(exported.body.verification.head_hash).toBe(verify.body.verification.head_hash);
    expect(exported.body.chain.map((e: { seq: string }) => e.seq)).toEqual(["1", "2", "3"]);
    const rest = await sys.call("GET", `/ops/api/audit-chain/export?limit=3&cursor=${exported.body.next_cursor}`, { token: operatorA });
    expect(rest.body.chain.map((e: { seq: string }) => e.seq)).toEqual(["4", "5"]);
    expect(rest.body.has_more).toBe(false);
    expect(rest.body.chain[1].event_hash).toBe(verify.body.verification.head_hash);
  });

  it("never shows another tenant's entries, and refuses a tenant_id parameter", async () => {
    const b = await sys.token({ tenant_id: "audit-b", roles: ["operator"] });
    const list = await sys.call("GET", "/audit", { token: b });
    expect(list.body.total).toBe(1);
    expect(list.body.entries[0].event_type).toBe("auth_failure");
    const a = await sys.call("GET", "/audit", { token: operatorA });
    expect(JSON.stringify(a.body)).not.toContain("secret_of_b");
    const exported = await sys.call("GET", "/ops/api/audit-chain/export", { token: b });
    expect(exported.body.chain).toHaveLength(1);
    const verify = await sys.call("GET", "/audit/verify", { token: b });
    expect(verify.body.verification.head_seq).toBe("1");
    const forged = await sys.call("GET", "/audit?tenant_id=audit-a", { token: b });
    expect(forged.status).toBe(400);
    expect(forged.body.error.field).toBe("tenant_id");
    const nobody = await sys.call("GET", "/audit/stats", { token: await sys.token({ tenant_id: "audit-nobody" }) });
    expect(nobody.body.stats.total_entries).toBe("0");
  });

  it.each(["/audit", "/ops/api/audit", "/audit/stats", "/audit/verify", "/ops/api/audit-chain/export"])(
    "RBAC: a viewer may not read %s (audit:view)",
    async (route) => {
      const viewer = await sys.token({ tenant_id: "audit-a", roles: ["viewer"] });
      const res = await sys.call("GET", route, { token: viewer });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("permission_denied");
      expect(res.body.error.message).toContain("audit:view");
    },
  );

  it.each([
    ["/audit?limit=1001", "limit"],
    ["/audit?limit=ten", "limit"],
    ["/audit?offset=-1", "offset"],
    ["/audit?event_type=budget.exceeded", "event_type"],
    ["/audit?start_time=yesterday", "start_time"],
    ["/audit?start_time=2026-02-02T00:00:00Z&end_time=2026-02-01T00:00:00Z", "end_time"],
    ["/audit?cursor=not-a-cursor", "cursor"],
    ["/audit?trace_id=" + "t".repeat(65), "trace_id"],
    ["/audit?colour=blue", "colour"],
    ["/ops/api/audit?limit=-1", "limit"],
    ["/audit/stats?end_time=never", "end_time"],
    ["/audit/stats?start_time=2026-02-02T00:00:00Z&end_time=2026-02-02T00:00:00Z", "end_time"],
    ["/audit/verify?from_seq=-1", "from_seq"],
    ["/audit/verify?from_seq=abc", "from_seq"],
    ["/audit/verify?from_seq=99", "from_seq"],
    ["/ops/api/audit-chain/export?limit=10001", "limit"],
    ["/ops/api/audit-chain/export?cursor=%25%25", "cursor"],
  ])("answers 400 naming the field for %s", async (route, field) => {
    const res = await sys.call("GET", route, { token: operatorA });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe(field);
  });

  it("has no REST route for AppendAudit", async () => {
    const res = await sys.call("POST", "/audit", { token: operatorA, body: { event_type: "config_change" } });
    expect(res.status).toBe(405);
  });
});
