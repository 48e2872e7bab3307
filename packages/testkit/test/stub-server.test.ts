import { complete } from "@mariozechner/pi-ai";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_REPLY, startStubProvider, type StubProvider } from "../src/index.js";
import { context, modelFor, textOf } from "./helpers.js";

let stub: StubProvider | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

async function post(path: string, body: unknown, headers: Record<string, string> = { authorization: "Bearer k" }): Promise<Response> {
  return fetch(`${stub!.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

const chatBody = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

describe("stub provider server", () => {
  it("answers with the default reply when nothing is scripted, and then from the responder", async () => {
    stub = await startStubProvider();
    const model = modelFor("openai-completions", stub);
    expect(textOf(await complete(model, context, { apiKey: "k" }))).toBe(DEFAULT_REPLY);

    stub.setResponder((req) => ({ text: `turn ${stub!.requests.length} for ${req.body.model as string}` }));
    stub.script({ text: "scripted first" });
    expect(textOf(await complete(model, context, { apiKey: "k" }))).toBe("scripted first");
    expect(textOf(await complete(model, context, { apiKey: "k" }))).toBe("turn 3 for gpt-4o-mini");
  });

  it("reset clears the queue, the responder and the recorded requests in place", async () => {
    stub = await startStubProvider();
    const recorded = stub.requests;
    stub.script({ text: "left over" });
    stub.setResponder(() => ({ text: "responder" }));
    await post("/v1/chat/completions", chatBody);
    stub.script({ text: "queued" });
    stub.reset();
    expect(recorded).toHaveLength(0);
    const body = (await (await post("/v1/chat/completions", chatBody)).json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toBe(DEFAULT_REPLY);
    expect(recorded).toHaveLength(1);
  });

  it("waits the turn's latency, else the default latency, before the first byte", async () => {
    stub = await startStubProvider({ defaultLatencyMs: 50 });
    let started = performance.now();
    await (await post("/v1/chat/completions", chatBody)).text();
    expect(performance.now() - started).toBeGreaterThanOrEqual(48);

    stub.script({ latencyMs: 0 });
    started = performance.now();
    await (await post("/v1/chat/completions", chatBody)).text();
    expect(performance.now() - started).toBeLessThan(45);
  });

  it("rejects a missing key with 401 and a malformed body with 400, as the providers do, without consuming a turn", async () => {
    stub = await startStubProvider();
    stub.script({ text: "kept for later" });
    const noKey = await post("/v1/messages", { model: "m", max_tokens: 1, messages: [] }, {});
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ type: "error", error: { type: "authentication_error" } });

    const badJson = await post("/v1/chat/completions", "{not json");
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toMatchObject({ error: { type: "invalid_request_error" } });

    const noMaxTokens = await post("/v1/messages", { model: "m", messages: [] }, { "x-api-key": "k" });
    expect(noMaxTokens.status).toBe(400);
    expect(((await noMaxTokens.json()) as { error: { message: string } }).error.message).toMatch(/max_tokens/);

    expect(stub.requests.map((r) => r.protocol)).toEqual(["anthropic-messages", "openai-completions", "anthropic-messages"]);
    const ok = (await (await post("/v1/chat/completions", chatBody)).json()) as { choices: { message: { content: string } }[] };
    expect(ok.choices[0]!.message.content).toBe("kept for later");
  });

  it("routes with or without the /v1 prefix and answers 404 elsewhere", async () => {
    stub = await startStubProvider();
    expect((await post("/chat/completions", chatBody)).status).toBe(200);
    expect((await post("/responses", { model: "m", input: "hi" })).status).toBe(200);
    expect((await post("/v1/embeddings", { model: "m", input: "hi" })).status).toBe(404);
    expect((await fetch(`${stub.url}/health`)).status).toBe(200);
    expect(stub.requests.map((r) => r.path)).toEqual(["/chat/completions", "/responses"]);
  });

  it("the chat stream ends with a usage-only chunk and [DONE] only when include_usage is asked for", async () => {
    stub = await startStubProvider();
    stub.script({ usage: { input: 5, output: 2, reasoning: 1 } }, { usage: { input: 5, output: 2 } });
    const withUsage = await (await post("/v1/chat/completions", { ...chatBody, stream: true, stream_options: { include_usage: true } })).text();
    const frames = withUsage.trim().split("\n\n");
    expect(frames.at(-1)).toBe("data: [DONE]");
    const last = JSON.parse(frames.at(-2)!.slice("data: ".length)) as { choices: unknown[]; usage: Record<string, unknown> };
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 2, completion_tokens_details: { reasoning_tokens: 1 } });

    const withoutUsage = await (await post("/v1/chat/completions", { ...chatBody, stream: true })).text();
    expect(withoutUsage).not.toContain('"usage"');
  });

  it("listens on the requested port", async () => {
    const probe = await startStubProvider();
    const port = Number(new URL(probe.url).port);
    await probe.close();
    stub = await startStubProvider({ port });
    expect(stub.url).toBe(`http://127.0.0.1:${port}`);
  });
});
