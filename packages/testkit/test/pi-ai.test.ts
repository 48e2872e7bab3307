import { complete } from "@mariozechner/pi-ai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startStubProvider, type StubProvider } from "../src/index.js";
import { context, modelFor, PROTOCOLS, run, textOf } from "./helpers.js";

// pi-ai always asks for SSE (`stream: true`); `complete` is `stream` consumed to the end. Both are
// driven here, through pi-ai's real provider code and the official SDKs under it.

let stub: StubProvider;

/** SSE events to let through before the reset: past each protocol's preamble, into the text. */
const CUT_AFTER = { "openai-completions": 3, "openai-responses": 6, "anthropic-messages": 4 } as const;
beforeAll(async () => {
  stub = await startStubProvider();
});
afterAll(() => stub.close());
beforeEach(() => stub.reset());

describe.each(PROTOCOLS)("%s through pi-ai", (protocol) => {
  const model = () => modelFor(protocol, stub);

  it("complete: returns the scripted text, and the request reached the protocol's endpoint", async () => {
    stub.script({ text: "Hello from the stub, in several pieces." });
    const message = await complete(model(), context, { apiKey: "test-key" });
    expect(message.stopReason).toBe("stop");
    expect(textOf(message)).toBe("Hello from the stub, in several pieces.");
    expect(stub.requests).toHaveLength(1);
    const [request] = stub.requests;
    expect(request).toMatchObject({ protocol, method: "POST", stream: true });
    expect(request!.path).toBe(protocol === "openai-completions" ? "/v1/chat/completions" : protocol === "openai-responses" ? "/v1/responses" : "/v1/messages");
    expect(request!.body.model).toBe(model().id);
    const key = protocol === "anthropic-messages" ? request!.headers["x-api-key"] : request!.headers.authorization;
    expect(key).toMatch(/test-key/);
  });

  it("stream: text arrives as several deltas, then done", async () => {
    stub.script({ text: "one two three four five six seven eight" });
    const { message, events } = await run(model());
    const deltas = events.filter((e) => e.type === "text_delta");
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((e) => (e.type === "text_delta" ? e.delta : "")).join("")).toBe("one two three four five six seven eight");
    expect(events.at(-1)?.type).toBe("done");
    expect(textOf(message)).toBe("one two three four five six seven eight");
  });

  it.each(["complete", "stream"] as const)("%s: a tool call with arguments assembled from incremental deltas", async (mode) => {
    stub.script({
      text: "Creating it.",
      toolCalls: [
        { id: protocol === "anthropic-messages" ? "toolu_01" : "call_01", name: "create_task", arguments: { title: "Ship it", priority: 2, tags: ["a", "b"] } },
        { name: "create_task", arguments: { title: "Second" } },
      ],
    });
    const { message, events } = mode === "stream" ? await run(model()) : { message: await complete(model(), context, { apiKey: "test-key" }), events: [] };
    expect(message.stopReason).toBe("toolUse");
    expect(textOf(message)).toBe("Creating it.");
    const calls = message.content.filter((b) => b.type === "toolCall");
    expect(calls.map((c) => [c.name, c.arguments])).toEqual([
      ["create_task", { title: "Ship it", priority: 2, tags: ["a", "b"] }],
      ["create_task", { title: "Second" }],
    ]);
    // Responses ids are `call_id|item_id` in pi-ai; the call id is what goes back to the provider.
    expect(calls[0]!.id.split("|")[0]).toBe(protocol === "anthropic-messages" ? "toolu_01" : "call_01");
    expect(calls[1]!.id).toBeTruthy();
    if (mode === "stream") {
      expect(events.filter((e) => e.type === "toolcall_delta").length).toBeGreaterThan(2);
      expect(events.filter((e) => e.type === "toolcall_end")).toHaveLength(2);
    }
    // The tools pi-ai offered are on the wire in the protocol's shape.
    const tools = stub.requests[0]!.body.tools as { name?: string; function?: { name: string } }[];
    expect(tools.map((t) => t.name ?? t.function?.name)).toEqual(["create_task"]);
  });

  it.each(["complete", "stream"] as const)("%s: usage with cache and reasoning tokens surfaces in pi-ai's usage and cost", async (mode) => {
    stub.script({ text: "Thought about it.", usage: { input: 1200, output: 300, cacheRead: 800, cacheWrite: 100, reasoning: 200 } });
    const message = mode === "stream" ? (await run(model())).message : await complete(model(), context, { apiKey: "test-key" });
    // OpenAI Responses has no cache-write field: those tokens arrive as plain input.
    const expected =
      protocol === "openai-responses"
        ? { input: 1300, output: 300, cacheRead: 800, cacheWrite: 0 }
        : { input: 1200, output: 300, cacheRead: 800, cacheWrite: 100 };
    expect(message.usage).toMatchObject({ ...expected, totalTokens: 2400 });
    // pi-ai has no reasoning figure of its own: reasoning tokens are inside `output`.
    const cost = model().cost;
    expect(message.usage.cost.input).toBeCloseTo((expected.input * cost.input) / 1e6, 12);
    expect(message.usage.cost.output).toBeCloseTo((300 * cost.output) / 1e6, 12);
    expect(message.usage.cost.cacheRead).toBeCloseTo((800 * cost.cacheRead) / 1e6, 12);
    expect(message.usage.cost.total).toBeGreaterThan(0);
  });

  it("finish reason length maps to pi-ai's stopReason where pi-ai reads it", async () => {
    stub.script({ text: "cut sho", finishReason: "length", usage: { input: 10, output: 4 } });
    const message = await complete(model(), context, { apiKey: "test-key" });
    if (protocol === "openai-responses") {
      // OpenAI ends a truncated response with `response.incomplete`, which pi-ai 0.73.1 does not
      // read: it reports "stop" and no usage. The runtime cannot rely on usage in that case.
      expect(message.stopReason).toBe("stop");
      expect(message.usage.output).toBe(0);
    } else {
      expect(message.stopReason).toBe("length");
      expect(message.usage.output).toBe(4);
    }
  });

  it("429 with Retry-After and SDK retries off: an error event naming the status, one request", async () => {
    stub.script({ fault: { kind: "status", status: 429, retryAfterSeconds: 7 } });
    const { message, events } = await run(model(), { maxRetries: 0 });
    expect(events.at(-1)?.type).toBe("error");
    expect(message.stopReason).toBe("error");
    expect(message.errorMessage).toMatch(/^429 /);
    expect(message.errorMessage).toMatch(protocol === "anthropic-messages" ? /rate_limit_error/ : /Rate limit/);
    expect(stub.requests).toHaveLength(1);
  });

  it("429 with Retry-After and the SDK's default retries: the SDK waits the header's delay and retries", async () => {
    stub.script({ fault: { kind: "status", status: 429, retryAfterSeconds: 1 } }, { text: "after the wait" });
    const started = Date.now();
    const message = await complete(model(), context, { apiKey: "test-key" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(textOf(message)).toBe("after the wait");
    expect(stub.requests).toHaveLength(2);
  });

  it("503 with SDK retries off: an error event with the status and the provider's error body", async () => {
    stub.script({ fault: { kind: "status", status: 503 } });
    const { message, events } = await run(model(), { maxRetries: 0 });
    expect(events.map((e) => e.type)).toEqual(["error"]);
    expect(message.errorMessage).toMatch(/^503 /);
    expect(message.errorMessage).toMatch(/overloaded/);
    expect(stub.requests).toHaveLength(1);
  });

  it("5xx with the SDK's default retries: three requests in all, then the error", async () => {
    stub.script(
      { fault: { kind: "status", status: 500, retryAfterSeconds: 0 } },
      { fault: { kind: "status", status: 502, retryAfterSeconds: 0 } },
      { fault: { kind: "status", status: 503, retryAfterSeconds: 0 } },
      { text: "never reached" },
    );
    const message = await complete(model(), context, { apiKey: "test-key" });
    expect(message.stopReason).toBe("error");
    expect(message.errorMessage).toMatch(/^503 /);
    expect(stub.requests).toHaveLength(3);
  });

  it.each(["complete", "stream"] as const)("%s: a connection reset mid-stream is an error event after partial output, never retried", async (mode) => {
    stub.script({ text: "alpha beta gamma delta epsilon zeta eta theta", usage: { input: 50, output: 20 }, fault: { kind: "reset_mid_stream", afterChunks: CUT_AFTER[protocol] } });
    const { message, events } =
      mode === "stream" ? await run(model()) : { message: await complete(model(), context, { apiKey: "test-key" }), events: [] };
    expect(message.stopReason).toBe("error");
    expect(message.errorMessage).toMatch(/terminated|ECONNRESET|socket|closed/i);
    if (mode === "stream") {
      expect(events.at(-1)?.type).toBe("error");
      expect(events.some((e) => e.type === "text_delta")).toBe(true);
    }
    expect(textOf(message).length).toBeGreaterThan(0);
    expect(textOf(message)).not.toBe("alpha beta gamma delta epsilon zeta eta theta");
    // Usage is whatever arrived before the cut: Anthropic sends input figures first, OpenAI last.
    expect(message.usage.input).toBe(protocol === "anthropic-messages" ? 50 : 0);
    // The SDKs retry only before the response starts; a cut stream is the caller's to handle.
    expect(stub.requests).toHaveLength(1);
  });

  it("a reset before any event is still an error, not a hang", async () => {
    stub.script({ fault: { kind: "reset_mid_stream", afterChunks: 0 } });
    const { message } = await run(model());
    expect(message.stopReason).toBe("error");
    expect(stub.requests).toHaveLength(1);
  });
});

describe.each(["openai-completions", "anthropic-messages"] as const)("%s: the SDK's Retry-After wait", (protocol) => {
  it("does not end early when the caller aborts; the abort lands when the wait is over", async () => {
    stub.script({ fault: { kind: "status", status: 429, retryAfterSeconds: 2 } }, { text: "never used" });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    const message = await complete(modelFor(protocol, stub), context, { apiKey: "test-key", signal: controller.signal });
    expect(message.stopReason).toBe("aborted");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(stub.requests).toHaveLength(1);
  });
});
