import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sseFrames, startRuntimeHarness, type RuntimeHarness } from "./support/runtime-harness.js";

let h: RuntimeHarness;
beforeAll(async () => {
  // Two steps and 1,000 reserved output tokens keep the worst-case reservation small (~1,400 µ$).
  h = await startRuntimeHarness({ env: { CLASPER_MAX_STEPS: "2", CLASPER_RESERVE_OUTPUT_TOKENS: "1000" } });
});
afterAll(async () => {
  await h?.stop();
});

const send = (token: string, body: Record<string, unknown>) =>
  h.sys.call("POST", "/api/agents/send", { token, body: { user_id: "u1", session_key: "user:u1:ops", message: "go", task_title: "Gov thread", ...body } });

/** Backend tool executions (POST /api/tools/{name}). */
const toolRequests = () => h.backend.state.requests.filter((r) => r.method === "POST" && r.path.startsWith("/api/tools/"));

/** The tenant's newest trace once it is complete (spans arrive in batches). */
async function latestTrace(token: string): Promise<any> {
  for (let i = 0; i < 75; i += 1) {
    const list = await h.sys.call("GET", "/traces", { token });
    const id = list.body.traces?.[0]?.trace_id;
    if (id) return h.trace(token, id);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("no trace arrived");
}

describe("governance of executions", () => {
  it("a hard budget that allows one streamed execution refuses the second before any provider request", async () => {
    const token = await h.token("t-budget");
    const set = await h.sys.call("POST", "/budget", { token, body: { limit_micros: 5000, period: "daily", hard_limit: true } });
    expect(set.status).toBe(200);
    // 25,000 input + 1,000 output tokens of gpt-4o-mini: 3,750 + 600 = 4,350 µ$.
    h.stub.script({ text: "first", usage: { input: 25_000, output: 1_000 } });
    const body = { user_id: "u1", session_key: "user:u1:ops", message: "go", task_title: "Budget thread" };
    const first = sseFrames((await h.sys.call("POST", "/api/agents/stream", { token, body })).body);
    expect(first.at(-1)!.event).toBe("done");
    expect(first.at(-1)!.data.cost.total_micros).toBe("4350");
    const requestsAfterFirst = h.stub.requests.length;

    const second = sseFrames((await h.sys.call("POST", "/api/agents/stream", { token, body })).body);
    expect(second.map((f) => f.event)).toEqual(["error"]);
    expect(second[0]!.data).toMatchObject({ code: "budget_exceeded" });
    expect(h.stub.requests.length).toBe(requestsAfterFirst);

    // The same refusal on send is a 402 with the reason.
    const refused = await send(token, {});
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe("budget_exceeded");
    const budget = await h.sys.call("GET", "/budget", { token });
    expect(budget.body.budget).toMatchObject({ spent_micros: "4350", reserved_micros: "0" });
  });

  it("refuses a tool outside the skills' allowlist before any request leaves, traces and audits it", async () => {
    const token = await h.token("t-allowlist");
    const before = toolRequests().length;
    h.stub.script({ toolCalls: [{ id: "c1", name: "lookup_customer", arguments: { email: "a@example.com" } }] }, { text: "I cannot look that up." });
    const res = await send(token, {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(toolRequests().length).toBe(before);
    expect(h.backend.state.toolCalls.filter((c) => c.name === "lookup_customer")).toHaveLength(0);
    // The model was told, as a tool error.
    expect(JSON.stringify(h.stub.requests.at(-1)!.body)).toContain("not in the enabled skills");
    const trace = await h.trace(token, res.body.trace_id);
    const tool = trace.steps.find((s: any) => s.type === "tool_call");
    expect(tool.tool_call.permitted).toBe(false);
    const denied = (await h.audit(token)).filter((e: any) => e.event_type === "tool_permission_denied");
    expect(denied).toHaveLength(1);
    expect(denied[0].event_data).toMatchObject({ tool_name: "lookup_customer", reason: "not_allowed" });
  });

  it("refuses a call for another user's data with no outbound call", async () => {
    const token = await h.token("t-foreign");
    const before = toolRequests().length;
    h.stub.script({ toolCalls: [{ id: "c1", name: "echo", arguments: { message: "x", user_id: "u2" } }] }, { text: "ok" });
    const res = await send(token, {});
    expect(res.status).toBe(200);
    expect(toolRequests().length).toBe(before);
    expect(JSON.stringify(h.stub.requests.at(-1)!.body)).toContain("is not the user this agent acts for");
  });

  it("stops at the step limit with a clear error and makes no further tool call", async () => {
    const token = await h.token("t-steps");
    const before = h.backend.state.toolCalls.length;
    h.stub.script(
      { toolCalls: [{ id: "c1", name: "echo", arguments: { message: "1" } }] },
      { toolCalls: [{ id: "c2", name: "echo", arguments: { message: "2" } }] },
    );
    const res = await send(token, {});
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("step_limit_exceeded");
    expect(res.body.error.message).toContain("CLASPER_MAX_STEPS");
    expect(h.backend.state.toolCalls.length).toBe(before + 1);
    const trace = await latestTrace(token);
    expect(trace.status).toBe("error");
    expect(trace.error_code).toBe("step_limit_exceeded");
  });

  it("answers approval_required with the decision id when a policy requires approval", async () => {
    const token = await h.token("t-approval");
    const policy = await h.sys.call("POST", "/ops/api/policies", {
      token,
      body: { policy_id: "approve-all", subject: { type: "cost" }, effect: { decision: "require_approval" }, explanation: "all runs need approval" },
    });
    expect(policy.status, JSON.stringify(policy.body)).toBeLessThan(300);
    const requests = h.stub.requests.length;
    const res = await send(token, {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.status).toBe("approval_required");
    expect(res.body.decision_id).not.toBe("");
    expect(h.stub.requests.length).toBe(requests);
  });
});
