import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startStubProvider, type StubProvider } from "@clasper/testkit";
import { runtimeConfig } from "../src/config.js";
import { createLlmCaller, LlmCallError, textOf } from "../src/llm/call.js";
import { modelChain, parseModelString } from "../src/llm/models.js";
import { reportsReasoningTokens } from "../src/llm/provider-responses.js";
import { worstCaseMicros } from "../src/llm/usage.js";

let stub: StubProvider;
beforeAll(async () => {
  stub = await startStubProvider();
});
afterAll(async () => {
  await stub.close();
});
beforeEach(() => stub.reset());

function caller(env: Record<string, string> = {}) {
  const config = runtimeConfig({ LLM_PROVIDER: "openai", LLM_API: "openai-completions", LLM_MODEL_DEFAULT: "gpt-4o-mini", LLM_BASE_URL: `${stub.url}/v1`, CLASPER_RETRY_BASE_DELAY_MS: "1", ...env });
  return { config, llm: createLlmCaller(config, trace.getTracer("test"), { random: () => 0.5 }) };
}

const ask = (env: Record<string, string> = {}, onTextDelta?: (d: string) => void) => {
  const { config, llm } = caller(env);
  return llm.call({
    models: modelChain(config, config.LLM_MODEL_DEFAULT),
    context: { systemPrompt: "s", messages: [{ role: "user", content: "hi", timestamp: 0 }] },
    signal: new AbortController().signal,
    parent: ROOT_CONTEXT,
    ...(onTextDelta ? { onTextDelta } : {}),
  });
};

describe("config", () => {
  it("names the variable that is wrong", () => {
    expect(() => runtimeConfig({ CLASPER_RETRY_ATTEMPTS: "4" })).toThrow(/CLASPER_RETRY_ATTEMPTS/);
    expect(() => runtimeConfig({ AGENT_JWT_SECRET: "short" })).toThrow(/AGENT_JWT_SECRET: must be at least 32 bytes/);
    expect(runtimeConfig({}).CLASPER_MAX_STEPS).toBe(10);
  });

  it("parses provider/model strings like seed §10", () => {
    expect(parseModelString("anthropic/claude-haiku-4-5", "openai")).toEqual({ provider: "anthropic", id: "claude-haiku-4-5" });
    expect(parseModelString("a/b/c", "openai")).toEqual({ provider: "openai", id: "a/b/c" });
  });

  it("refuses a provider without a key when no base URL is set, naming the variable", () => {
    const config = runtimeConfig({ LLM_PROVIDER: "anthropic", LLM_MODEL_DEFAULT: "claude-haiku-4-5" });
    expect(() => modelChain(config, config.LLM_MODEL_DEFAULT)).toThrow(/ANTHROPIC_API_KEY/);
  });
});

describe("one logical model call", () => {
  it("streams, converts usage (cache in input, reasoning from the body) and prices it in micros", async () => {
    stub.script({ text: "hello there", usage: { input: 1000, output: 100, cacheRead: 500, reasoning: 40 } });
    const deltas: string[] = [];
    const result = await ask({}, (d) => deltas.push(d));
    expect(textOf(result.message)).toBe("hello there");
    expect(deltas.join("")).toBe("hello there");
    expect(stub.requests[0]!.stream).toBe(true);
    expect(result.meter).toMatchObject({ input: 1500, output: 100, cacheRead: 500, reasoning: 40 });
    // gpt-4o-mini per million tokens: input $0.15, output $0.60, cache read $0.08.
    expect(result.meter).toMatchObject({ inputMicros: 150, outputMicros: 60, cacheReadMicros: 40, totalMicros: 250 });
  });

  it("reads reasoning tokens from the body of the Responses API too, and skips the scan for APIs that never report them", async () => {
    stub.script({ text: "ok", usage: { input: 10, output: 50, reasoning: 30 } });
    const result = await ask({ LLM_API: "openai-responses" });
    expect(textOf(result.message)).toBe("ok");
    expect(result.meter).toMatchObject({ output: 50, reasoning: 30 });
    expect(reportsReasoningTokens("openai-completions")).toBe(true);
    expect(reportsReasoningTokens("a-wire-protocol-pi-ai-added-later")).toBe(true);
    expect(reportsReasoningTokens("anthropic-messages")).toBe(false);
  });

  it("makes at most CLASPER_RETRY_ATTEMPTS requests per model, then fails with the provider's status", async () => {
    const fault = { fault: { kind: "status" as const, status: 500 } };
    stub.script(fault, fault, fault, fault);
    const error = await ask().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmCallError);
    expect((error as LlmCallError).attempts).toBe(3);
    expect(stub.requests).toHaveLength(3);
  });

  it("does not retry a 400", async () => {
    stub.script({ fault: { kind: "status", status: 400 } });
    await expect(ask()).rejects.toMatchObject({ code: "provider_error", attempts: 1 });
  });

  it("gives up on a model whose Retry-After exceeds CLASPER_RETRY_MAX_DELAY_MS and uses the fallback", async () => {
    stub.script({ fault: { kind: "status", status: 429, retryAfterSeconds: 30 } }, { text: "fallback" });
    const result = await ask({ LLM_MODEL_FALLBACK: "gpt-4o", CLASPER_RETRY_MAX_DELAY_MS: "1000" });
    expect(result.model.id).toBe("gpt-4o");
    expect(stub.requests.map((r) => r.body.model)).toEqual(["gpt-4o-mini", "gpt-4o"]);
  });

  it("does not retry once text was delivered, and reports the cost as unknown", async () => {
    stub.script({ text: "partial reply here", fault: { kind: "reset_mid_stream", afterChunks: 2 } });
    const error = (await ask({}, () => undefined).catch((e: unknown) => e)) as LlmCallError;
    expect(error).toBeInstanceOf(LlmCallError);
    expect(error.costUnknown).toBe(true);
    expect(stub.requests).toHaveLength(1);
  });

  it("aborts the provider call when the caller goes away", async () => {
    stub.script({ text: "slow", latencyMs: 5000 });
    const { config, llm } = caller();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const error = await llm
      .call({ models: modelChain(config, config.LLM_MODEL_DEFAULT), context: { messages: [{ role: "user", content: "hi", timestamp: 0 }] }, signal: controller.signal, parent: ROOT_CONTEXT })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "aborted" });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("worst-case reservation", () => {
  it("re-sends the prompt and earlier outputs each step at the dearest model's prices", () => {
    const model = { cost: { input: 1, output: 2, cacheRead: 0, cacheWrite: 0 } } as never;
    // step 0: 100×1 + 10×2; step 1: 110×1 + 10×2.
    expect(worstCaseMicros([model], 100, 10, 2)).toBe(250);
  });
});
