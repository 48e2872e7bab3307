import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { getModel } from "@mariozechner/pi-ai";
import { encode } from "gpt-tokenizer/encoding/o200k_base";
import { encode as encodeCl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { testBackendFromEnv, useFreshDatabase } from "@clasper/db/testing";
import { errorInfoOf } from "@clasper/core";
import { ForecastCostRequestSchema } from "@clasper/proto";
import { DEFAULT_BUDGET } from "../src/budget-check.js";
import { catalogPrice, dollarsToMicros, forecastCost, tokenCostMicros, type BudgetSnapshot } from "../src/forecast.js";
import { ForecastHandlers } from "../src/handlers/forecast.js";
import { resolveModelPrice } from "../src/pricing.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { listPriceOverrides, upsertPriceOverride, deletePriceOverride } from "../src/store/price-overrides.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { countPromptTokens, ESTIMATE_METHOD, estimateTokens, openAiEncoding } from "../src/tokens.js";
import { callerContext } from "./support/caller.js";

const gpt4o = getModel("openai", "gpt-4o");
const sonnet = getModel("anthropic", "claude-sonnet-4-5");

let db: Kysely<GovernanceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "governance", (database) => {
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
});

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("catalogue prices (pi-ai)", () => {
  it("converts the catalogue's USD per million tokens to integer micro-dollars", () => {
    const price = catalogPrice("gpt-4o")!;
    expect(price).toMatchObject({ provider: "openai", model: "gpt-4o", source: "catalog" });
    expect(price.inputPerMtokMicros).toBe(BigInt(Math.round(gpt4o.cost.input * 1e6)));
    expect(price.outputPerMtokMicros).toBe(BigInt(Math.round(gpt4o.cost.output * 1e6)));
    expect(price.cacheReadPerMtokMicros).toBe(BigInt(Math.round(gpt4o.cost.cacheRead * 1e6)));
    const claude = catalogPrice("claude-sonnet-4-5")!;
    expect(claude).toMatchObject({ provider: "anthropic" });
    expect(claude.cacheWritePerMtokMicros).toBe(dollarsToMicros(sonnet.cost.cacheWrite));
  });

  it("accepts provider/model and an explicit provider, and prefers first-party providers", () => {
    expect(catalogPrice("anthropic/claude-sonnet-4-5")).toEqual(catalogPrice("claude-sonnet-4-5"));
    expect(catalogPrice("claude-sonnet-4-5", "anthropic")?.provider).toBe("anthropic");
    expect(catalogPrice("gpt-4o", "anthropic")).toBeUndefined();
    expect(catalogPrice("no-such-model-x")).toBeUndefined();
  });

  it("rounds token costs up to whole micro-dollars, exactly, even for large products", () => {
    expect(tokenCostMicros(1, 2_500_000n)).toBe(3n); // 2.5 µ$ → 3
    expect(tokenCostMicros(1_000_000, 2_500_000n)).toBe(2_500_000n);
    expect(tokenCostMicros(10_000_000, 600_000_000n)).toBe(6_000_000_000n);
    expect(tokenCostMicros(0, 600_000_000n)).toBe(0n);
  });
});

describe("forecastCost (pure)", () => {
  const price = catalogPrice("gpt-4o")!;
  const budget = (over: Partial<BudgetSnapshot> = {}): BudgetSnapshot => ({
    limitMicros: 10_000_000n,
    spentMicros: 0n,
    reservedMicros: 0n,
    hardLimit: true,
    alertThreshold: 0.8,
    ...over,
  });

  it("prices input and output at the catalogue's rates", () => {
    const result = forecastCost({ inputTokens: 12_345, outputTokens: 1000 }, price);
    expect(result.inputCostMicros).toBe(tokenCostMicros(12_345, dollarsToMicros(gpt4o.cost.input)));
    expect(result.outputCostMicros).toBe(tokenCostMicros(1000, dollarsToMicros(gpt4o.cost.output)));
    expect(result.estimatedCostMicros).toBe(result.inputCostMicros + result.outputCostMicros);
    expect(result).toMatchObject({ budgetAllowed: true, wouldExceedBudget: false, budgetRemainingMicros: undefined });
    expect(result.warnings[0]).toMatch(/No budget is set/);
  });

  it("prices cache reads and writes at their own rates", () => {
    const claude = catalogPrice("claude-sonnet-4-5")!;
    const result = forecastCost({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 1_000_000, cacheWriteTokens: 1_000_000 }, claude);
    expect(result.inputCostMicros).toBe(dollarsToMicros(sonnet.cost.cacheRead) + dollarsToMicros(sonnet.cost.cacheWrite));
  });

  it("reports remaining = limit − spent − reserved and stays quiet below the threshold", () => {
    const result = forecastCost({ inputTokens: 1000, outputTokens: 100 }, price, budget({ spentMicros: 1_000_000n, reservedMicros: 500_000n }));
    expect(result).toMatchObject({ budgetRemainingMicros: 8_500_000n, wouldExceedBudget: false, budgetAllowed: true, warnings: [] });
  });

  it("warns when the estimate crosses the alert threshold", () => {
    const result = forecastCost({ inputTokens: 1000, outputTokens: 100 }, price, budget({ spentMicros: 7_999_000n }));
    expect(result.wouldExceedBudget).toBe(false);
    expect(result.warnings).toEqual([expect.stringMatching(/Budget usage at 80\.\d% - approaching limit/)]);
  });

  it("denies on a hard budget and warns on a soft one when the estimate exceeds what remains", () => {
    const usage = { inputTokens: 1_000_000, outputTokens: 1000 };
    const hard = forecastCost(usage, price, budget({ spentMicros: 9_000_000n }));
    expect(hard).toMatchObject({ wouldExceedBudget: true, budgetAllowed: false, budgetRemainingMicros: 1_000_000n });
    expect(hard.warnings[0]).toMatch(/Budget exceeded: .* \$1\.000000 remaining \(hard limit\)/);
    const soft = forecastCost(usage, price, budget({ spentMicros: 9_000_000n, hardLimit: false }));
    expect(soft).toMatchObject({ wouldExceedBudget: true, budgetAllowed: true });
    expect(soft.warnings[0]).toMatch(/soft limit/);
  });
});

describe("token counting", () => {
  const text = "Summarise the incident report for the on-call engineer, in three bullet points. <|endoftext|> ünïcödé 日本語";

  it("counts OpenAI families with their tokenizer (o200k for gpt-4o, cl100k for gpt-4)", async () => {
    expect(openAiEncoding("gpt-4o")).toBe("o200k_base");
    expect(openAiEncoding("openai/gpt-4.1-mini")).toBe("o200k_base");
    expect(openAiEncoding("gpt-4")).toBe("cl100k_base");
    expect(openAiEncoding("o3-mini")).toBe("o200k_base");
    expect(openAiEncoding("claude-sonnet-4-5")).toBeUndefined();
    const counted = await countPromptTokens(text, "gpt-4o");
    expect(counted).toEqual({ tokens: encode(text, { disallowedSpecial: new Set() }).length, method: "tokenizer:o200k_base" });
    const old = await countPromptTokens(text, "gpt-4");
    expect(old).toEqual({ tokens: encodeCl100k(text, { disallowedSpecial: new Set() }).length, method: "tokenizer:cl100k_base" });
  });

  it("estimates other families as ceil(UTF-8 bytes / 3.5)", async () => {
    expect(estimateTokens("abcdefg")).toBe(2);
    expect(estimateTokens("abcdefgh")).toBe(3);
    expect(estimateTokens("日本")).toBe(2); // 6 bytes
    const counted = await countPromptTokens(text, "claude-sonnet-4-5");
    expect(counted).toEqual({ tokens: Math.ceil(Buffer.byteLength(text) / 3.5), method: ESTIMATE_METHOD });
  });
});

describe(`tenant prices (${testBackendFromEnv()})`, () => {
  it("uses the catalogue when the tenant has no override", async () => {
    const { price, known } = await resolveModelPrice(db, "t-none", "gpt-4o");
    expect(known).toBe(true);
    expect(price).toEqual(catalogPrice("gpt-4o"));
  });

  it("prefers the tenant's override, provider-specific before any-provider, and keeps catalogue cache prices", async () => {
    await upsertPriceOverride(db, "t-over", { model: "gpt-4o", inputPerMtokMicros: 1_000_000n, outputPerMtokMicros: 4_000_000n });
    let resolved = await resolveModelPrice(db, "t-over", "gpt-4o");
    expect(resolved.price).toMatchObject({ source: "tenant_override", inputPerMtokMicros: 1_000_000n, outputPerMtokMicros: 4_000_000n });
    expect(resolved.price.cacheReadPerMtokMicros).toBe(dollarsToMicros(gpt4o.cost.cacheRead));
    await upsertPriceOverride(db, "t-over", { provider: "openai", model: "gpt-4o", inputPerMtokMicros: 2n, outputPerMtokMicros: 3n });
    resolved = await resolveModelPrice(db, "t-over", "openai/gpt-4o");
    expect(resolved.price).toMatchObject({ inputPerMtokMicros: 2n, outputPerMtokMicros: 3n });
    // Another tenant still pays the catalogue price.
    expect((await resolveModelPrice(db, "t-other", "gpt-4o")).price.source).toBe("catalog");
    expect((await listPriceOverrides(db, "t-over")).map((r) => [r.provider, r.model])).toEqual([["", "gpt-4o"], ["openai", "gpt-4o"]]);
    expect(await deletePriceOverride(db, "t-over", "gpt-4o", "openai")).toBe(true);
    expect((await resolveModelPrice(db, "t-over", "gpt-4o")).price.inputPerMtokMicros).toBe(1_000_000n);
  });

  it("prices an unknown model at the tenant's fallback price ('*'), flagged unknown", async () => {
    await upsertPriceOverride(db, "t-self-hosted", { model: "*", inputPerMtokMicros: 100_000n, outputPerMtokMicros: 200_000n });
    const { price, known } = await resolveModelPrice(db, "t-self-hosted", "llama-in-house-70b");
    expect(known).toBe(false);
    expect(price).toMatchObject({ source: "tenant_default", model: "llama-in-house-70b", inputPerMtokMicros: 100_000n, cacheReadPerMtokMicros: 100_000n });
  });

  it("refuses an unknown model without a tenant price as bad input naming `model`", async () => {
    const err = await rejection(resolveModelPrice(db, "t-none", "llama-in-house-70b"));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(err)?.field).toBe("model");
    expect(err.rawMessage).toMatch(/unknown model "llama-in-house-70b"/);
  });

  it("refuses negative prices at the database", async () => {
    await expect(upsertPriceOverride(db, "t-neg", { model: "x", inputPerMtokMicros: -1n, outputPerMtokMicros: 0n })).rejects.toThrow();
  });
});

describe("ForecastCost handler", () => {
  it("forecasts from a token count with the default 1000 output tokens", async () => {
    const h = new ForecastHandlers(db);
    const res = await h.forecastCost(create(ForecastCostRequestSchema, { model: "gpt-4o", prompt: { case: "promptTokens", value: 2000n } }), callerContext({ tenantId: "t-h" }));
    const input = dollarsToMicros(gpt4o.cost.input);
    const output = dollarsToMicros(gpt4o.cost.output);
    expect(res.details).toMatchObject({ inputTokens: 2000n, outputTokens: 1000n, model: "gpt-4o", provider: "openai", priceKnown: true, tokenCounting: "given" });
    expect(res.details?.inputPricePerMtokMicros).toBe(input);
    expect(res.forecast?.estimatedCostMicros).toBe(tokenCostMicros(2000, input) + tokenCostMicros(1000, output));
    // A tenant without a budget is forecast against the default budget its first reservation gets.
    expect(res.forecast).toMatchObject({ budgetAllowed: true, wouldExceedBudget: false, budgetRemainingMicros: DEFAULT_BUDGET.limitMicros, warning: "" });
  });

  it("counts prompt text with the tokenizer or the estimate and says which", async () => {
    const h = new ForecastHandlers(db);
    const ctx = callerContext({ tenantId: "t-h" });
    const text = "hello there, how are you today?";
    const openai = await h.forecastCost(create(ForecastCostRequestSchema, { model: "gpt-4o", prompt: { case: "promptText", value: text }, maxOutputTokens: 10 }), ctx);
    expect(openai.details).toMatchObject({ inputTokens: BigInt(encode(text).length), outputTokens: 10n, tokenCounting: "tokenizer:o200k_base" });
    const claude = await h.forecastCost(create(ForecastCostRequestSchema, { model: "claude-sonnet-4-5", prompt: { case: "promptText", value: text } }), ctx);
    expect(claude.details).toMatchObject({ inputTokens: BigInt(estimateTokens(text)), provider: "anthropic", tokenCounting: ESTIMATE_METHOD });
  });

  it("reads the tenant's budget through the injected reader", async () => {
    const h = new ForecastHandlers(db, async (_db, tenantId) =>
      tenantId === "t-budget" ? { limitMicros: 1000n, spentMicros: 900n, reservedMicros: 50n, hardLimit: true, alertThreshold: 0.8 } : undefined,
    );
    const res = await h.forecastCost(create(ForecastCostRequestSchema, { model: "gpt-4o", prompt: { case: "promptTokens", value: 1000n } }), callerContext({ tenantId: "t-budget" }));
    expect(res.forecast).toMatchObject({ budgetRemainingMicros: 50n, wouldExceedBudget: true, budgetAllowed: false });
    expect(res.forecast?.warning).toMatch(/hard limit/);
  });
});
