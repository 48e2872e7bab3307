import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRuntimeHarness, type RuntimeHarness } from "./support/runtime-harness.js";

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startRuntimeHarness();
});
afterAll(async () => {
  await h?.stop();
});

const SCHEMA = { type: "object", required: ["name", "tags"], properties: { name: { type: "string" }, tags: { type: "array", items: { type: "string" }, minItems: 1 } }, additionalProperties: false };

describe("POST /llm-task", () => {
  it("returns validated JSON (code fences stripped)", async () => {
    const token = await h.token("t-llm");
    h.stub.script({ text: '```json\n{"name":"a","tags":["x"]}\n```' });
    const res = await h.sys.call("POST", "/llm-task", { token, body: { prompt: "Describe", input: { id: 1 }, schema: SCHEMA } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ output: { name: "a", tags: ["x"] }, validated: true });
    expect(JSON.stringify(h.stub.requests.at(-1)!.body)).toContain('\\"id\\": 1');
  });

  it("repairs once: nested schema violations are sent back and the corrected output accepted", async () => {
    const token = await h.token("t-llm");
    const before = h.stub.requests.length;
    h.stub.script({ text: '{"name":"a","tags":[]}' }, { text: '{"name":"a","tags":["fixed"]}' });
    const res = await h.sys.call("POST", "/llm-task", { token, body: { prompt: "Describe", schema: SCHEMA } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.output.tags).toEqual(["fixed"]);
    expect(h.stub.requests.length - before).toBe(2);
    expect(JSON.stringify(h.stub.requests.at(-1)!.body)).toContain("/tags");
  });

  it("runs in the workspace of a token bound to one, and its trace says so", async () => {
    const token = await h.token("t-llm-ws", { workspace_id: "ws-7" });
    h.stub.script({ text: '{"name":"a","tags":["x"]}' });
    const res = await h.sys.call("POST", "/llm-task", { token, body: { prompt: "Describe", schema: SCHEMA } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const trace = await h.trace(token, res.body.trace_id);
    expect(trace.workspace_id).toBe("ws-7");
  });

  it("fails clearly when the repair is still invalid", async () => {
    const token = await h.token("t-llm");
    h.stub.script({ text: "not json" }, { text: "still not json" });
    const res = await h.sys.call("POST", "/llm-task", { token, body: { prompt: "Describe", schema: SCHEMA } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("invalid_llm_output");
    expect(res.body.error.message).toContain("invalid JSON returned: still not json");
  });
});

describe("POST /compact and GET /usage", () => {
  it("summarizes all but keep_recent turns into one system message", async () => {
    const token = await h.token("t-compact");
    h.stub.script({ text: "They agreed on Friday." });
    const messages = [
      { role: "user", content: "Can we ship Friday?" },
      { role: "assistant", content: "Yes." },
      { role: "user", content: "Great" },
      { role: "assistant", content: "Anything else?" },
    ];
    const res = await h.sys.call("POST", "/compact", { token, body: { messages, keep_recent: 1 } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.compacted_messages).toEqual([
      { role: "system", content: "[Previous conversation summary]\nThey agreed on Friday." },
      { role: "assistant", content: "Anything else?" },
    ]);
    expect(res.body).toMatchObject({ original_count: 4, compacted_count: 2 });
    expect(JSON.stringify(h.stub.requests.at(-1)!.body)).toContain("USER: Can we ship Friday?");
    const unchanged = await h.sys.call("POST", "/compact", { token, body: { messages: messages.slice(0, 2) } });
    expect(unchanged.body).toMatchObject({ original_count: 2, compacted_count: 2 });
  });

  it("reports the tenant's usage from stored traces", async () => {
    const token = await h.token("t-usage");
    h.stub.script({ text: "hi", usage: { input: 100, output: 10 } });
    const sent = await h.sys.call("POST", "/api/agents/send", { token, body: { user_id: "u1", session_key: "user:u1:ops", message: "hi", task_title: "Usage" } });
    expect(sent.status).toBe(200);
    await h.trace(token, sent.body.trace_id);
    const usage = await h.sys.call("GET", "/usage", { token });
    expect(usage.status, JSON.stringify(usage.body)).toBe(200);
    expect(usage.body).toMatchObject({ request_count: "1", total_output_tokens: "10", total_cost_micros: sent.body.cost.total_micros, currency: "USD" });
    const other = await h.sys.call("GET", "/usage", { token: await h.token("t-usage-other") });
    expect(other.body.request_count).toBe("0");
  });
});

describe("bad input on every endpoint", () => {
  const base = { user_id: "u1", session_key: "user:u1:ops", message: "hi", task_title: "T" };
  const cases: [string, string, unknown, string][] = [
    ["/api/agents/send", "missing message", { ...base, message: undefined }, "message"],
    ["/api/agents/send", "wrong type", { ...base, message: 5 }, ""],
    ["/api/agents/send", "oversize message", { ...base, message: "x".repeat(200_001) }, "message"],
    ["/api/agents/send", "malformed history", { ...base, messages: [{ role: "robot", content: "x" }] }, ""],
    ["/api/agents/send", "malformed session key", { ...base, session_key: "nope" }, "session_key"],
    ["/api/agents/send", "user mismatch", { ...base, user_id: "u2" }, "user_id"],
    ["/api/agents/send", "no task", { ...base, task_title: undefined }, "task_title"],
    ["/api/agents/send", "bad webhook", { ...base, webhook: { url: "not a url" } }, "webhook.url"],
    ["/llm-task", "missing prompt", { schema: {} }, "prompt"],
    ["/llm-task", "temperature out of range", { prompt: "p", temperature: 3 }, "temperature"],
    ["/llm-task", "invalid schema", { prompt: "p", schema: { type: "no-such-type" } }, "schema"],
    ["/compact", "no messages", { messages: [] }, "messages"],
    ["/compact", "negative keep_recent", { messages: [{ role: "user", content: "x" }], keep_recent: -1 }, "keep_recent"],
  ];
  it.each(cases)("%s: %s → 400", async (route, _what, body, field) => {
    const token = await h.token("t-bad");
    const requests = h.stub.requests.length;
    const res = await h.sys.call("POST", route, { token, body });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    if (field) expect(JSON.stringify(res.body.error)).toContain(field);
    expect(h.stub.requests.length).toBe(requests);
  });

  // A stream refused before its first event (its field rules, the session key naming the user, a
  // task given) is an ordinary JSON error with its status: nothing was sent yet.
  it.each([
    ["missing user", { ...base, user_id: undefined }, "invalid_field", "user_id"],
    ["user mismatch", { ...base, user_id: "u2" }, "user_mismatch", "user_id"],
    ["no task", { ...base, task_title: undefined }, "task_not_specified", "task_title"],
  ])("/api/agents/stream: %s → 400 JSON naming the field, no SSE", async (_what, body, code, field) => {
    const token = await h.token("t-bad");
    const requests = h.stub.requests.length;
    const res = await h.sys.call("POST", "/api/agents/stream", { token, body });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code, field });
    expect(h.stub.requests.length).toBe(requests);
  });

  it("GET /usage: bad time window → 400", async () => {
    const token = await h.token("t-bad");
    const res = await h.sys.call("GET", "/usage?start_time=2030-01-01T00:00:00Z&end_time=2020-01-01T00:00:00Z", { token });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe("start_time");
  });
});
