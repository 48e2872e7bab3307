import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sseFrames, startRuntimeHarness, type RuntimeHarness } from "./support/runtime-harness.js";

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startRuntimeHarness({ env: { LLM_MODEL_FALLBACK: "gpt-4o", CLASPER_CONTROL_PLANE_TIMEOUT_MS: "500" } });
});
afterAll(async () => {
  await h?.stop();
});

const body = (extra: Record<string, unknown> = {}) => ({ user_id: "u1", session_key: "user:u1:ops", message: "go", task_title: "Faults", ...extra });

describe("provider and backend faults", () => {
  it("retries a 429 after the Retry-After delay", async () => {
    const token = await h.token("t-429");
    h.stub.requests.length = 0;
    h.stub.script({ fault: { kind: "status", status: 429, retryAfterSeconds: 1 } }, { text: "after the pause" });
    const started = Date.now();
    const res = await h.sys.call("POST", "/api/agents/send", { token, body: body() });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.response).toBe("after the pause");
    expect(h.stub.requests).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it("falls back to LLM_MODEL_FALLBACK after three 503s, three provider requests per model at most", async () => {
    const token = await h.token("t-503");
    h.stub.requests.length = 0;
    const unavailable = { fault: { kind: "status" as const, status: 503 } };
    h.stub.script(unavailable, unavailable, unavailable, unavailable, unavailable, { text: "from the fallback" });
    const res = await h.sys.call("POST", "/api/agents/send", { token, body: body() });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.response).toBe("from the fallback");
    expect(h.stub.requests.map((r) => r.body.model)).toEqual(["gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "gpt-4o", "gpt-4o"]);
    const trace = await h.trace(token, res.body.trace_id);
    expect(trace.steps.filter((s: any) => s.type === "llm_call")).toHaveLength(6);
  });

  it("a connection reset mid-stream ends the stream with an error, settles the reservation in full, fails the trace", async () => {
    const token = await h.token("t-reset");
    h.stub.requests.length = 0;
    h.stub.script({ text: "a reply that will be cut off in the middle", fault: { kind: "reset_mid_stream", afterChunks: 3 } });
    const res = await h.sys.call("POST", "/api/agents/stream", { token, body: body() });
    const frames = sseFrames(res.body);
    expect(frames[0]!.event).toBe("start");
    expect(frames.at(-1)!.event).toBe("error");
    expect(frames.at(-1)!.data.code).toBe("provider_error");
    // Output was already delivered, so the call is not retried.
    expect(h.stub.requests).toHaveLength(1);
    const trace = await h.trace(token, frames[0]!.data.trace_id);
    expect(trace.status).toBe("error");
    const gate = trace.steps.find((s: any) => s.type === "governance_decision");
    const reserved = gate.governance_decision.reserved_micros;
    expect(Number(reserved)).toBeGreaterThan(0);
    const budget = await h.sys.call("GET", "/budget", { token });
    expect(budget.body.budget).toMatchObject({ spent_micros: reserved, reserved_micros: "0" });
  });

  it("a Control Plane timeout after commit is retried with the same idempotency key: one task", async () => {
    const token = await h.token("t-cp");
    h.backend.failNext("POST /api/mission-control/tasks", { dropResponseAfterCommit: true }, 1);
    h.stub.script({ toolCalls: [{ id: "c1", name: "create_task", arguments: { title: "Exactly once" } }] }, { text: "created" });
    const res = await h.sys.call("POST", "/api/agents/send", { token, body: body({ user_id: "u9", session_key: "user:u9:ops", task_title: "CP thread" }) });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(h.backend.state.tasksOf({ tenantId: "t-cp", userId: "u9" }).filter((t) => t.title === "Exactly once")).toHaveLength(1);
    const creates = h.backend.state.requests.filter((r) => r.method === "POST" && r.path === "/api/mission-control/tasks" && r.user_id === "u9");
    // The tool's create twice (dropped answer, then replayed), then the thread task the reply goes to.
    expect(creates).toHaveLength(3);
    expect(creates[0]!.idempotency_key).toBe(creates[1]!.idempotency_key);
    expect(creates[1]!.replayed).toBe(true);
  });
});
