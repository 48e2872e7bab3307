import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startStubProvider, type StubProvider } from "../src/index.js";

// pi-ai only ever streams; these drive the non-streaming JSON responses with the official SDKs that
// pi-ai is built on (same versions), so any client that asks for `stream: false` parses them too.

let stub: StubProvider;
let openai: OpenAI;
let anthropic: Anthropic;
beforeAll(async () => {
  stub = await startStubProvider();
  openai = new OpenAI({ apiKey: "test-key", baseURL: `${stub.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: "test-key", baseURL: stub.url, maxRetries: 0 });
});
afterAll(() => stub.close());
beforeEach(() => stub.reset());

const usage = { input: 100, output: 40, cacheRead: 60, cacheWrite: 10, reasoning: 25 };
const toolCall = { name: "create_task", arguments: { title: "Ship it", due: null } };

describe("OpenAI Chat Completions, non-streaming", () => {
  it("text, tool calls, finish reason and usage with cached and reasoning tokens", async () => {
    stub.script({ text: "Done.", toolCalls: [{ id: "call_9", ...toolCall }], usage });
    const completion = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    const choice = completion.choices[0]!;
    expect(choice.message.content).toBe("Done.");
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.tool_calls).toEqual([
      { id: "call_9", type: "function", function: { name: "create_task", arguments: '{"title":"Ship it","due":null}' } },
    ]);
    expect(completion.usage).toMatchObject({
      prompt_tokens: 170,
      completion_tokens: 40,
      total_tokens: 210,
      prompt_tokens_details: { cached_tokens: 70, cache_write_tokens: 10 },
      completion_tokens_details: { reasoning_tokens: 25 },
    });
    expect(stub.requests[0]).toMatchObject({ protocol: "openai-completions", stream: false });
  });

  it("a status fault is the SDK's typed error with the provider's message and headers", async () => {
    stub.script({ fault: { kind: "status", status: 429, retryAfterSeconds: 3 } });
    const err = await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.headers?.get("retry-after")).toBe("3");
    expect(rateLimit.code).toBe("rate_limit_exceeded");
    expect(rateLimit.requestID).toMatch(/^req_stub/);
  });

  it("a custom error body is sent as given", async () => {
    stub.script({ fault: { kind: "status", status: 500, body: { error: { message: "custom boom", type: "server_error" } } } });
    const err = await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as Error).message).toBe("500 custom boom");
  });

  it("a reset in the middle of the body fails the call", async () => {
    stub.script({ text: "a long enough reply to be cut in half", fault: { kind: "reset_mid_stream", afterChunks: 1 } });
    await expect(openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] })).rejects.toThrow();
    expect(stub.requests).toHaveLength(1);
  });
});

describe("OpenAI Responses, non-streaming", () => {
  it("message and function_call items, output_text and usage details", async () => {
    stub.script({ text: "Done.", toolCalls: [toolCall], usage });
    const response = await openai.responses.create({ model: "gpt-4o-mini", input: "hi" });
    expect(response.status).toBe("completed");
    expect(response.output_text).toBe("Done.");
    const call = response.output.find((item) => item.type === "function_call");
    expect(call).toMatchObject({ type: "function_call", name: "create_task", arguments: '{"title":"Ship it","due":null}' });
    expect(call && "call_id" in call && call.call_id).toMatch(/^call_/);
    expect(response.usage).toMatchObject({
      input_tokens: 170,
      input_tokens_details: { cached_tokens: 60 },
      output_tokens: 40,
      output_tokens_details: { reasoning_tokens: 25 },
      total_tokens: 210,
    });
  });

  it("length is an incomplete response with the reason", async () => {
    stub.script({ text: "cut", finishReason: "length" });
    const response = await openai.responses.create({ model: "gpt-4o-mini", input: "hi" });
    expect(response.status).toBe("incomplete");
    expect(response.incomplete_details).toEqual({ reason: "max_output_tokens" });
  });

  it("streaming through the SDK yields the documented event sequence", async () => {
    stub.script({ text: "Hi there", toolCalls: [toolCall] });
    const events = await openai.responses.create({ model: "gpt-4o-mini", input: "hi", stream: true });
    const types: string[] = [];
    for await (const event of events) types.push(event.type);
    expect(types[0]).toBe("response.created");
    expect(types).toContain("response.output_text.delta");
    expect(types).toContain("response.function_call_arguments.done");
    expect(types.at(-1)).toBe("response.completed");
  });
});

describe("Anthropic Messages, non-streaming", () => {
  it("text and tool_use blocks, stop reason and usage with cache figures", async () => {
    stub.script({ text: "Done.", toolCalls: [toolCall], usage });
    const message = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    expect(message.stop_reason).toBe("tool_use");
    expect(message.content[0]).toEqual({ type: "text", text: "Done." });
    expect(message.content[1]).toMatchObject({ type: "tool_use", name: "create_task", input: { title: "Ship it", due: null } });
    expect((message.content[1] as { id: string }).id).toMatch(/^toolu_/);
    expect(message.usage).toMatchObject({ input_tokens: 100, output_tokens: 40, cache_read_input_tokens: 60, cache_creation_input_tokens: 10 });
  });

  it("errors carry Anthropic's error shape", async () => {
    stub.script({ fault: { kind: "status", status: 529 } });
    const err = await anthropic.messages.create({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.InternalServerError);
    expect((err as InstanceType<typeof Anthropic.APIError>).error).toEqual({ type: "error", error: { type: "overloaded_error", message: expect.any(String) } });
    expect((err as InstanceType<typeof Anthropic.APIError>).requestID).toMatch(/^req_stub/);
  });

  it("the SDK's own stream helper assembles the final message from the events", async () => {
    stub.script({ text: "Streamed text", toolCalls: [toolCall], usage });
    const final = await anthropic.messages
      .stream({ model: "claude-haiku-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] })
      .finalMessage();
    expect(final.content[0]).toMatchObject({ type: "text", text: "Streamed text" });
    expect(final.content[1]).toMatchObject({ type: "tool_use", input: { title: "Ship it", due: null } });
    expect(final.stop_reason).toBe("tool_use");
    expect(final.usage).toMatchObject({ input_tokens: 100, output_tokens: 40, cache_read_input_tokens: 60 });
  });
});
