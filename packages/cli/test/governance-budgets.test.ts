import { describe, expect, it } from "vitest";
import { useOneProcess } from "./support/system.js";

const sys = useOneProcess();

describe("budgets through the gateway", () => {
  it("POST /budget, GET /budget, POST /budget/check", async () => {
    const token = await sys.token({ tenant_id: "budget-a", roles: ["release_manager"] });
    const before = await sys.call("GET", "/budget", { token });
    expect(before.status).toBe(404);

    const set = await sys.call("POST", "/budget", { token, body: { limit_micros: 2_000_000, period: "daily", hard_limit: true, alert_threshold: 0.5 } });
    expect(set.status).toBe(200);
    expect(set.body.budget).toMatchObject({ limit_micros: "2000000", spent_micros: "0", reserved_micros: "0", period: "daily", hard_limit: true, alert_threshold: 0.5 });
    expect(Date.parse(set.body.budget.period_end) - Date.parse(set.body.budget.period_start)).toBe(86_400_000);

    // Unset fields keep their value; spend is kept.
    const update = await sys.call("POST", "/budget", { token, body: { limit_micros: "3000000" } });
    expect(update.body.budget).toMatchObject({ limit_micros: "3000000", period: "daily", hard_limit: true, alert_threshold: 0.5 });

    const got = await sys.call("GET", "/budget", { token });
    expect(got.status).toBe(200);
    expect(got.body.budget.limit_micros).toBe("3000000");
    expect(got.body.stats).toMatchObject({ remaining_micros: "3000000", percent_used: 0 });

    const check = await sys.call("POST", "/budget/check", { token, body: { estimated_cost_micros: 2_000_000 } });
    expect(check.status).toBe(200);
    expect(check.body.check).toMatchObject({ allowed: true, reason: "alert_threshold_reached", remaining_micros: "3000000" });
    const over = await sys.call("POST", "/budget/check", { token, body: { estimated_cost_micros: 3_000_001 } });
    expect(over.body.check).toMatchObject({ allowed: false, reason: "budget_exceeded" });
  });

  it("answers 400 naming the field for bad input", async () => {
    const token = await sys.token({ tenant_id: "budget-bad", roles: ["admin"] });
    const cases: [string, string, unknown, string][] = [
      ["POST", "/budget", { limit_micros: 0 }, "limit_micros"],
      ["POST", "/budget", { limit_micros: 1, alert_threshold: 2 }, "alert_threshold"],
      ["POST", "/budget", { limit_micros: 1, period: "hourly" }, "period"],
      ["POST", "/budget/check", { estimated_cost_micros: -5 }, "estimated_cost_micros"],
    ];
    for (const [method, route, body, field] of cases) {
      const res = await sys.call(method, route, { token, body });
      expect(res.status, `${route} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.error.field ?? res.body.error.message).toContain(field);
    }
  });

  it("keeps tenants apart: another tenant has no budget (404) and its check does not see this one", async () => {
    const a = await sys.token({ tenant_id: "budget-iso-a", roles: ["admin"] });
    const b = await sys.token({ tenant_id: "budget-iso-b", roles: ["admin"] });
    await sys.call("POST", "/budget", { token: a, body: { limit_micros: 10 } });
    expect((await sys.call("GET", "/budget", { token: b })).status).toBe(404);
    expect((await sys.call("GET", "/budget", { token: a })).body.budget.limit_micros).toBe("10");
  });

  it("enforces RBAC: viewer 403 on read, operator 403 on change", async () => {
    const viewer = await sys.token({ tenant_id: "budget-rbac", roles: ["viewer"] });
    const operator = await sys.token({ tenant_id: "budget-rbac", roles: ["operator"] });
    expect((await sys.call("GET", "/budget", { token: viewer })).status).toBe(403);
    expect((await sys.call("POST", "/budget/check", { token: viewer, body: { estimated_cost_micros: 1 } })).status).toBe(403);
    expect((await sys.call("POST", "/budget", { token: operator, body: { limit_micros: 5 } })).status).toBe(403);
    expect((await sys.call("POST", "/budget/check", { token: operator, body: { estimated_cost_micros: 1 } })).status).toBe(200);
  });

  it("does not expose the internal reservation RPCs", async () => {
    const token = await sys.token({ tenant_id: "budget-internal", roles: ["admin"] });
    const res = await sys.call("POST", "/clasper.governance.v1.GovernanceService/ReserveBudget", { token, body: { execution_id: "e", amount_micros: 1 } });
    expect(res.status).toBe(404);
  });
});
