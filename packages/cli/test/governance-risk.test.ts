import { describe, expect, it } from "vitest";
import { useOneProcess } from "./support/system.js";

const sys = useOneProcess();

describe("POST /risk/score through the gateway", () => {
  it("scores the documented factors and answers level, reasons and recommendations", async () => {
    const token = await sys.token({ tenant_id: "risk-a", roles: ["viewer"] });
    const res = await sys.call("POST", "/risk/score", {
      token,
      body: {
        tool_count: 3,
        tool_names: ["search", "delete_file", "send_email"],
        skill_state: "draft",
        temperature: 1.2,
        data_sensitivity: "pii",
        custom_flags: ["prod"],
        adapter_risk_class: "high",
        requested_capabilities: ["fs", "net"],
        context: { external_network: true },
        provenance: { source: "marketplace" },
      },
    });
    expect(res.status).toBe(200);
    // tools 45+40=85 → 17; draft 60 → 12; 60 → 9; pii 100 → 20; 1 flag 20 → 2; adapter 70+10+50=100 → 15.
    expect(res.body).toMatchObject({
      risk_score: 75,
      risk_level: "critical",
      factors: { tool_breadth: 85, skill_maturity: 60, model_volatility: 60, data_sensitivity: 100, custom_factors: 20, adapter_risk: 100 },
    });
    expect(res.body.risk_factors).toEqual(expect.arrayContaining(["High-risk tools: delete_file, send_email", "Skill is in draft state", "High temperature: 1.2"]));
    expect(res.body.recommendations).toEqual(expect.arrayContaining(["Make sure redaction is enabled for this tenant's traces"]));
  });

  it("defaults every signal: unknown skill, temperature 0.7, no data", async () => {
    const token = await sys.token({ tenant_id: "risk-a", roles: ["viewer"] });
    const res = await sys.call("POST", "/risk/score", { token, body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ risk_score: 15, risk_level: "low", factors: { skill_maturity: 50, model_volatility: 35, adapter_risk: 0 } });
  });

  it("rejects bad input naming the field", async () => {
    const token = await sys.token({ tenant_id: "risk-a" });
    for (const [body, field] of [
      [{ temperature: 2.5 }, "temperature"],
      [{ tool_count: -1 }, "tool_count"],
      [{ data_sensitivity: "secret" }, "data_sensitivity"],
      [{ tenant_id: "risk-b" }, "tenant_id"],
    ] as const) {
      const res = await sys.call("POST", "/risk/score", { token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field).toBe(field);
    }
  });

  it("requires authentication", async () => {
    const res = await sys.call("POST", "/risk/score", { body: {} });
    expect(res.status).toBe(401);
  });
});

describe("POST /cost/forecast through the gateway", () => {
  it("prices a token count at the catalogue's prices, in micro-dollars", async () => {
    const token = await sys.token({ tenant_id: "fc-a", roles: ["operator"] });
    const res = await sys.call("POST", "/cost/forecast", { token, body: { model: "gpt-4o", prompt_tokens: 10_000, max_output_tokens: 500 } });
    expect(res.status).toBe(200);
    // Prices come from pi-ai's catalogue (checked number for number in the governance unit tests).
    const inPrice = Number(res.body.details.input_price_per_mtok_micros);
    const outPrice = Number(res.body.details.output_price_per_mtok_micros);
    expect(inPrice).toBeGreaterThan(0);
    expect(outPrice).toBeGreaterThan(inPrice);
    const input = Math.ceil((10_000 * inPrice) / 1e6);
    const output = Math.ceil((500 * outPrice) / 1e6);
    expect(res.body.details).toMatchObject({
      input_tokens: "10000",
      output_tokens: "500",
      model: "gpt-4o",
      provider: "openai",
      price_known: true,
      token_counting: "given",
    });
    expect(res.body.forecast).toMatchObject({
      input_cost_micros: String(input),
      output_cost_micros: String(output),
      estimated_cost_micros: String(input + output),
      budget_allowed: true,
      would_exceed_budget: false,
    });
  });

  it("counts prompt text with the tokenizer for OpenAI models and estimates for Anthropic", async () => {
    const token = await sys.token({ tenant_id: "fc-a", roles: ["operator"] });
    const text = "Please summarise the attached incident timeline for the on-call engineer.";
    const openai = await sys.call("POST", "/cost/forecast", { token, body: { model: "openai/gpt-4o", prompt_text: text } });
    expect(openai.status).toBe(200);
    expect(openai.body.details).toMatchObject({ token_counting: "tokenizer:o200k_base", output_tokens: "1000" });
    const claude = await sys.call("POST", "/cost/forecast", { token, body: { model: "claude-sonnet-4-5", prompt_text: text } });
    expect(claude.body.details).toMatchObject({ provider: "anthropic", token_counting: "estimate:utf8_bytes/3.5", input_tokens: String(Math.ceil(text.length / 3.5)) });
  });

  it("rejects an unknown model, a missing prompt, and out-of-range sizes, naming the field", async () => {
    const token = await sys.token({ tenant_id: "fc-a", roles: ["operator"] });
    const unknown = await sys.call("POST", "/cost/forecast", { token, body: { model: "no-such-model", prompt_tokens: 10 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: "invalid_field", field: "model" });
    expect(unknown.body.error.message).toContain("no-such-model");
    const noPrompt = await sys.call("POST", "/cost/forecast", { token, body: { model: "gpt-4o" } });
    expect(noPrompt.status).toBe(400);
    expect(noPrompt.body.error.field).toBe("prompt");
    const tooMany = await sys.call("POST", "/cost/forecast", { token, body: { model: "gpt-4o", prompt_tokens: 0 } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.field).toBe("prompt_tokens");
    const noModel = await sys.call("POST", "/cost/forecast", { token, body: { prompt_tokens: 5 } });
    expect(noModel.status).toBe(400);
    expect(noModel.body.error.field).toBe("model");
  });

  it("needs budget:view: a viewer is refused", async () => {
    const viewer = await sys.token({ tenant_id: "fc-a", roles: ["viewer"] });
    const res = await sys.call("POST", "/cost/forecast", { token: viewer, body: { model: "gpt-4o", prompt_tokens: 10 } });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain("budget:view");
  });
});
