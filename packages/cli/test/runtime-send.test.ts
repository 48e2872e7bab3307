import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import type { StubProtocol } from "@clasper/testkit";
import { sseFrames, startRuntimeHarness, type RuntimeHarness } from "./support/runtime-harness.js";

const PROTOCOLS: StubProtocol[] = ["openai-completions", "openai-responses", "anthropic-messages"];
const harnesses: RuntimeHarness[] = [];
afterAll(async () => {
  await Promise.all(harnesses.map((h) => h.stop()));
});

/** The scripted agent: create a task, post to it, call the backend's echo tool, then answer. */
function scriptToolLoop(h: RuntimeHarness) {
  h.stub.script(
    { toolCalls: [{ id: "call_1", name: "create_task", arguments: { title: "Ship the report" } }], usage: { input: 1000, output: 50, cacheRead: 200 } },
    { toolCalls: [{ id: "call_2", name: "echo", arguments: { message: "ping" } }], usage: { input: 1200, output: 40, reasoning: 10 } },
    { text: "Done: the task is created.", usage: { input: 1300, output: 20 } },
  );
}

describe.each(PROTOCOLS)("agent execution over %s", (protocol) => {
  let h: RuntimeHarness;
  it("send: tool loop, reply posted, trace with every step, cost settled, audited", async () => {
    h = await startRuntimeHarness({ protocol });
    harnesses.push(h);
    const tenant = `t-send-${protocol}`;
    const token = await h.token(tenant);
    scriptToolLoop(h);
    const res = await h.sys.call("POST", "/api/agents/send", {
      token,
      body: { user_id: "u1", session_key: "user:u1:ops", message: "Track the report", task_title: "Thread" },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "ok", response: "Done: the task is created." });
    expect(res.body.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(Number(res.body.usage.prompt_tokens)).toBeGreaterThanOrEqual(3500);
    expect(Number(res.body.cost.total_micros)).toBeGreaterThan(0);

    // The backend saw: the tool's task, the thread task, the reply; echo ran for this user.
    // The agent token names the tenant: the backend scopes the user's tasks by both.
    const tasks = h.backend.state.tasksOf({ tenantId: tenant, userId: "u1" }).map((t) => t.title).sort();
    expect(h.backend.state.tasksOf({ tenantId: "another-tenant", userId: "u1" })).toEqual([]);
    expect(tasks).toEqual(["Ship the report", "Thread"]);
    expect(h.backend.state.messages.map((m) => m.content)).toContain("Done: the task is created.");
    expect(h.backend.state.toolCalls.map((c) => c.name)).toEqual(["echo"]);
    expect(h.stub.requests).toHaveLength(3);
    // The model saw the tool results of earlier steps.
    expect(JSON.stringify(h.stub.requests[2]!.body)).toContain("ping");

    const trace = await h.trace(token, res.body.trace_id);
    expect(trace.status).toBe("success");
    expect(trace.execution_id).toBe(res.body.execution_id);
    expect(trace.agent_role).toBe("ops");
    expect(trace.cost_micros).toBe(res.body.cost.total_micros);
    const types = trace.steps.map((s: any) => s.type);
    expect(types.filter((t: string) => t === "llm_call")).toHaveLength(3);
    expect(types).toContain("governance_decision");
    expect(types).toContain("tool_call");

    const budget = await h.sys.call("GET", "/budget", { token });
    expect(budget.body.budget.spent_micros).toBe(res.body.cost.total_micros);
    expect(budget.body.budget.reserved_micros).toBe("0");

    const events = (await h.audit(token)).map((e: any) => e.event_type);
    expect(events).toEqual(expect.arrayContaining(["agent_execution_started", "agent_execution_completed"]));
  });

  it("stream: the same loop as events, under the same governance and tracing", async () => {
    const tenant = `t-stream-${protocol}`;
    const token = await h.token(tenant);
    scriptToolLoop(h);
    h.stub.requests.length = 0;
    const res = await h.sys.call("POST", "/api/agents/stream", {
      token,
      body: { user_id: "u2", session_key: "user:u2:ops", message: "Track it", task_title: "Stream thread" },
    });
    expect(res.status).toBe(200);
    const frames = sseFrames(res.body as string);
    const names = frames.map((f) => f.event);
    expect(names[0]).toBe("start");
    expect(names.at(-1)).toBe("done");
    expect(names.filter((n) => n === "tool_call")).toHaveLength(2);
    expect(names.filter((n) => n === "tool_result")).toHaveLength(2);
    expect(frames.filter((f) => f.event === "chunk").map((f) => f.data.data).join("")).toBe("Done: the task is created.");
    const start = frames[0]!.data;
    expect(h.backend.state.messages.some((m) => m.task_id === start.task_id && m.content === "Done: the task is created.")).toBe(true);
    const trace = await h.trace(token, start.trace_id);
    expect(trace.status).toBe("success");
    expect(trace.source).toBe("stream");
    const budget = await h.sys.call("GET", "/budget", { token });
    expect(budget.body.budget.spent_micros).toBe(frames.at(-1)!.data.cost.total_micros);
  });
});

describe("send details", () => {
  let h: RuntimeHarness;
  it("posts the plan document, signs the webhook, and acknowledges HEARTBEAT_OK silently", async () => {
    h = await startRuntimeHarness();
    harnesses.push(h);
    const token = await h.token("t-details");
    const received: { body: string; signature: string | undefined }[] = [];
    const hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push({ body, signature: req.headers["x-clasper-signature"] as string | undefined });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    try {
      h.stub.script({ text: "1. Draft\n2. Review" });
      const res = await h.sys.call("POST", "/api/agents/send", {
        token,
        body: {
          user_id: "u3",
          session_key: "user:u3:ops",
          message: "Plan the launch",
          task_title: "Launch",
          metadata: { kickoff_plan: true, plan_title: "Launch plan" },
          webhook: { url: hookUrl, secret: "s3cret" },
        },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(h.backend.state.documents.map((d) => d.title)).toContain("Launch plan");
      for (let i = 0; i < 50 && received.length === 0; i += 1) await new Promise((r) => setTimeout(r, 50));
      expect(received).toHaveLength(1);
      const expected = `sha256=${createHmac("sha256", "s3cret").update(received[0]!.body).digest("hex")}`;
      expect(received[0]!.signature).toBe(expected);
      expect(JSON.parse(received[0]!.body)).toMatchObject({ event: "agent.completed", trace_id: res.body.trace_id, user_id: "u3", role: "ops" });

      // Heartbeat: nothing is created or posted.
      const before = h.backend.state.requests.filter((r) => r.method === "POST").length;
      h.stub.script({ text: "HEARTBEAT_OK" });
      const hb = await h.sys.call("POST", "/api/agents/send", { token, body: { user_id: "u3", session_key: "user:u3:ops", message: "heartbeat", task_title: "Heartbeat thread" } });
      expect(hb.status).toBe(200);
      expect(hb.body.response).toBe("HEARTBEAT_OK");
      expect(h.backend.state.requests.filter((r) => r.method === "POST").length).toBe(before);
    } finally {
      hook.close();
    }
  });
});
