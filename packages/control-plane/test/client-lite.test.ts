import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { mintAgentToken } from "@clasper/auth";
import { ControlPlaneError, createControlPlaneClient, type MissionControlLite } from "../src/index.js";
import { clientFor, failure, SECRET, startLite, tokenFor } from "./helpers.js";

let lite: MissionControlLite;

beforeAll(async () => {
  lite = await startLite({
    customers: [
      { tenantId: "tenant-1", userId: "alice", customers: [{ id: "cus_1", name: "Acme Corp", email: "ops@acme.test" }] },
      { tenantId: "tenant-1", userId: "bob", customers: [{ id: "cus_2", name: "Bobco", email: "hi@bobco.test" }] },
    ],
    tools: [
      {
        name: "whoami",
        description: "Returns the caller as the backend sees it.",
        parameters: { type: "object", properties: {} },
        run: (_args, ctx) => ({ user_id: ctx.userId, agent_role: ctx.agentRole, trace_id: ctx.traceId }),
      },
    ],
  });
});
afterAll(() => lite.close());

const key = (() => {
  let n = 0;
  return () => `test-key-${++n}`;
})();


describe("contract endpoints over HTTP", () => {
  it("reports contract v1 capabilities", async () => {
    const caps = await clientFor(lite, "alice").capabilities();
    expect(caps.contract_version).toBe("v1");
    expect(caps.features).toMatchObject({ tasks: true, messages: true, documents: true, tool_requests: false });
  });

  it("creates a task with the default status and lists it", async () => {
    const client = clientFor(lite, "alice");
    const task = await client.createTask({ title: "Write the report", description: "Q3" }, { idempotencyKey: key() });
    expect(task).toMatchObject({ title: "Write the report", description: "Q3", status: "in_progress" });
    const page = await client.listTasks({ limit: 50 });
    expect(page.items.map((t) => t.id)).toContain(task.id);
  });

  it("posts a message and a document on a task", async () => {
    const client = clientFor(lite, "alice");
    const task = await client.createTask({ title: "Plan launch", status: "todo", metadata: { source: "test" } }, { idempotencyKey: key() });
    expect(task.status).toBe("todo");
    const message = await client.postMessage(
      { task_id: task.id, content: "On it.", actor_type: "agent", agent_role: "jarvis", attachments: { links: [] } },
      { idempotencyKey: key() },
    );
    expect(message).toMatchObject({ task_id: task.id, content: "On it." });
    const doc = await client.createDocument({ task_id: task.id, title: "Plan", content: "1. ship", doc_type: "plan" }, { idempotencyKey: key() });
    expect(doc).toMatchObject({ task_id: task.id, title: "Plan", doc_type: "plan" });
    expect(lite.state.messages.find((m) => m.id === message.id)).toMatchObject({ user_id: "alice", actor_type: "agent" });
    expect(lite.state.documents.find((d) => d.id === doc.id)).toMatchObject({ user_id: "alice", content: "1. ship" });
  });

  it("sends the idempotency key as body field and header, and the token on every call", async () => {
    const sent: { headers: Headers; body: Record<string, unknown> }[] = [];
    const client = createControlPlaneClient({
      baseUrl: lite.url,
      token: tokenFor("alice"),
      fetch: (url, init) => {
        sent.push({ headers: new Headers(init?.headers), body: JSON.parse(String(init?.body ?? "{}")) as Record<string, unknown> });
        return fetch(url, init);
      },
    });
    const k = key();
    await client.createTask({ title: "Keyed" }, { idempotencyKey: k, traceId: "trace-abc" });
    await client.callTool("echo", { message: "m" }, { idempotencyKey: `${k}-tool`, traceId: "trace-abc" });
    await client.listTasks();
    expect(sent.map((s) => [s.headers.get("idempotency-key"), s.body["idempotency_key"] ?? null])).toEqual([
      [k, k],
      [`${k}-tool`, `${k}-tool`],
      [null, null],
    ]);
    expect(sent.every((s) => (s.headers.get("x-agent-token") ?? "").split(".").length === 3)).toBe(true);
    expect(sent[1]!.body).toMatchObject({ arguments: { message: "m" }, trace_id: "trace-abc" });
    const record = lite.state.requests.filter((r) => r.method === "POST").at(-2)!;
    expect(record).toMatchObject({ method: "POST", path: "/api/mission-control/tasks", idempotency_key: k, user_id: "alice", trace_id: "trace-abc" });
    // The header alone is enough, and a header that contradicts the body is refused.
    const headerOnly = await fetch(`${lite.url}/api/mission-control/tasks`, {
      method: "POST",
      headers: { "x-agent-token": await tokenFor("alice")(), "idempotency-key": "hdr-1", "content-type": "application/json" },
      body: JSON.stringify({ title: "Header keyed" }),
    });
    expect(headerOnly.status).toBe(200);
    expect(lite.state.requests.at(-1)!.idempotency_key).toBe("hdr-1");
    const mismatch = await fetch(`${lite.url}/api/mission-control/tasks`, {
      method: "POST",
      headers: { "x-agent-token": await tokenFor("alice")(), "idempotency-key": "hdr-2", "content-type": "application/json" },
      body: JSON.stringify({ title: "Header keyed", idempotency_key: "body-2" }),
    });
    expect(mismatch.status).toBe(400);
    expect(await mismatch.json()).toMatchObject({ code: "idempotency_key_mismatch" });
  });

  it("pages through tasks with next_cursor", async () => {
    const client = clientFor(lite, "pager");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.createTask({ title: `T${i}` }, { idempotencyKey: key() })).id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await client.listTasks({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((t) => t.id));
      cursor = page.next_cursor ?? undefined;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
  });

  it("serves /health and /api/capabilities without a token", async () => {
    expect(await (await fetch(`${lite.url}/health`)).json()).toEqual({ status: "ok" });
    const discovery = (await (await fetch(`${lite.url}/api/capabilities`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ contract_version: "v1", version: "0.1.0" });
    expect(discovery["features"]).toEqual(expect.arrayContaining(["task_create", "tool_execute"]));
  });
});

describe("tools", () => {
  it("lists the sample tools with JSON Schema parameters", async () => {
    const tools = await clientFor(lite, "alice").listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["echo", "lookup_customer", "slow", "whoami"]));
    expect(tools.find((t) => t.name === "echo")!.parameters).toMatchObject({ type: "object", required: ["message"] });
  });

  it("runs echo and passes the trace id and the verified caller to the tool", async () => {
    const client = clientFor(lite, "alice");
    expect(await client.callTool("echo", { message: "hi" }, { idempotencyKey: key() })).toEqual({ message: "hi" });
    const who = await client.callTool("whoami", {}, { idempotencyKey: key(), traceId: "trace-tool" });
    expect(who).toEqual({ user_id: "alice", agent_role: "jarvis", trace_id: "trace-tool" });
    expect(lite.state.toolCalls.at(-1)).toMatchObject({ name: "whoami", user_id: "alice", trace_id: "trace-tool" });
  });

  it("lookup_customer answers only with the caller's own customers", async () => {
    expect(await clientFor(lite, "alice").callTool("lookup_customer", { customer_id: "cus_1" }, { idempotencyKey: key() })).toEqual({
      customer: { id: "cus_1", name: "Acme Corp", email: "ops@acme.test" },
    });
    const err = await failure(clientFor(lite, "bob").callTool("lookup_customer", { customer_id: "cus_1" }, { idempotencyKey: key() }));
    expect(err).toMatchObject({ status: 404, code: "not_found", retryable: false });
    // Another tenant's alice is another user.
    const elsewhere = createControlPlaneClient({ baseUrl: lite.url, token: tokenFor("alice", "jarvis", "tenant-2") });
    expect(await failure(elsewhere.callTool("lookup_customer", { customer_id: "cus_1" }, { idempotencyKey: key() }))).toMatchObject({ status: 404 });
  });

  it("refuses arguments that break the tool's schema, and unknown tools", async () => {
    const client = clientFor(lite, "alice");
    const bad = await failure(client.callTool("echo", { message: 42 }, { idempotencyKey: key() }));
    expect(bad).toMatchObject({ status: 400, code: "invalid_arguments", retryable: false });
    expect(bad.message).toContain("arguments.message");
    const missing = await failure(client.callTool("nope", {}, { idempotencyKey: key() }));
    expect(missing).toMatchObject({ status: 404, code: "tool_not_found" });
  });

  it("times out on a slow tool and lets the caller abort one", async () => {
    const slowClient = clientFor(lite, "alice", 150);
    const started = Date.now();
    const timeout = await failure(slowClient.callTool("slow", { ms: 2_000 }, { idempotencyKey: key() }));
    expect(timeout).toMatchObject({ status: 0, code: "timeout", retryable: true });
    expect(Date.now() - started).toBeLessThan(1_500);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const aborted = await failure(clientFor(lite, "alice").callTool("slow", { ms: 2_000 }, { idempotencyKey: key(), signal: controller.signal }));
    expect(aborted).toMatchObject({ code: "aborted", retryable: false });
  });
});

describe("agent token", () => {
  async function statusWith(token: string | undefined): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${lite.url}/api/mission-control/tasks?limit=1`, { headers: token === undefined ? {} : { "x-agent-token": token } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  const key32 = new TextEncoder().encode(SECRET);
  const sign = (claims: Record<string, unknown>, exp: string | number = "5m", secret = key32) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime(exp).sign(secret);

  it.each([
    ["missing", () => Promise.resolve(undefined), "missing_token"],
    ["garbage", () => Promise.resolve("not-a-jwt"), "invalid_token"],
    ["signed with another secret", () => mintAgentToken({ secret: "another-secret-that-is-32-bytes-long!!", tenantId: "tenant-1", userId: "alice", agentRole: "jarvis" }), "invalid_token"],
    ["expired", () => sign({ type: "agent", user_id: "alice", agent_role: "jarvis" }, Math.floor(Date.now() / 1000) - 60), "token_expired"],
    ["not an agent token", () => sign({ type: "user", user_id: "alice", agent_role: "jarvis" }), "invalid_token"],
    ["without user_id", () => sign({ type: "agent", agent_role: "jarvis" }), "missing_claim"],
    ["without agent_role", () => sign({ type: "agent", user_id: "alice" }), "missing_claim"],
    ["unsigned (alg none)", async () => {
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
      return `${enc({ alg: "none" })}.${enc({ type: "agent", user_id: "alice", agent_role: "jarvis", exp: Math.floor(Date.now() / 1000) + 60 })}.`;
    }, "invalid_token"],
  ])("rejects a %s token with 401", async (_name, make, code) => {
    const { status, body } = await statusWith(await make());
    expect(status).toBe(401);
    expect(body).toMatchObject({ code });
    expect(typeof body["error"]).toBe("string");
  });

  it("surfaces a 401 to the client as a non-retryable error", async () => {
    const client = createControlPlaneClient({ baseUrl: lite.url, token: () => Promise.resolve("bad") });
    const err = await failure(client.createTask({ title: "x" }, { idempotencyKey: key() }));
    expect(err).toMatchObject({ status: 401, code: "invalid_token", retryable: false, operation: "create task" });
    expect(err.message).toBe("Failed to create task: 401 token is malformed");
  });

  it("refuses to start with a short secret", async () => {
    await expect(startLite({ agentSecret: "short" })).rejects.toThrow(/at least 32 bytes/);
  });
});

describe("tenant scoping", () => {
  it("never shows, or lets anyone act on, another user's tasks", async () => {
    const alice = clientFor(lite, "scope-alice");
    const bob = clientFor(lite, "scope-bob");
    const task = await alice.createTask({ title: "Alice only" }, { idempotencyKey: key() });
    expect((await bob.listTasks()).items).toEqual([]);
    expect((await alice.listTasks()).items.map((t) => t.id)).toEqual([task.id]);
    const msg = await failure(bob.postMessage({ task_id: task.id, content: "hi" }, { idempotencyKey: key() }));
    expect(msg).toMatchObject({ status: 404, code: "task_not_found" });
    const doc = await failure(bob.createDocument({ task_id: task.id, title: "x", content: "y" }, { idempotencyKey: key() }));
    expect(doc).toMatchObject({ status: 404, code: "task_not_found" });
    expect(lite.state.messages.filter((m) => m.task_id === task.id)).toEqual([]);
  });

  it("tells users apart by tenant too: the same user id in another tenant sees nothing", async () => {
    const here = clientFor(lite, "same-user");
    const there = createControlPlaneClient({ baseUrl: lite.url, token: tokenFor("same-user", "jarvis", "tenant-2") });
    const shared = key();
    const task = await here.createTask({ title: "Tenant 1" }, { idempotencyKey: shared });
    expect((await there.listTasks()).items).toEqual([]);
    expect(await failure(there.postMessage({ task_id: task.id, content: "hi" }, { idempotencyKey: key() }))).toMatchObject({ status: 404, code: "task_not_found" });
    // The same idempotency key in the other tenant is a new create, not a replay of tenant 1's answer.
    const theirs = await there.createTask({ title: "Tenant 1" }, { idempotencyKey: shared });
    expect(theirs.id).not.toBe(task.id);
    expect(lite.state.tasks.find((t) => t.id === theirs.id)).toMatchObject({ tenant_id: "tenant-2", user_id: "same-user" });
  });

  it("keeps idempotency keys apart per user: the same key creates one task each", async () => {
    const shared = key();
    const a = await clientFor(lite, "key-alice").createTask({ title: "Same" }, { idempotencyKey: shared });
    const b = await clientFor(lite, "key-bob").createTask({ title: "Same" }, { idempotencyKey: shared });
    expect(a.id).not.toBe(b.id);
    expect(lite.state.tasks.find((t) => t.id === b.id)!.user_id).toBe("key-bob");
  });
});

describe("bad input", () => {
  async function post(path: string, body: string, token?: string) {
    const res = await fetch(`${lite.url}${path}`, {
      method: "POST",
      headers: { "x-agent-token": token ?? (await tokenFor("alice")()), "content-type": "application/json" },
      body,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it.each([
    ["/api/mission-control/tasks", {}, "title"],
    ["/api/mission-control/tasks", { title: "   " }, "title"],
    ["/api/mission-control/tasks", { title: 7 }, "title"],
    ["/api/mission-control/tasks", { title: "x", metadata: "no" }, "metadata"],
    ["/api/mission-control/messages", { content: "hi" }, "task_id"],
    ["/api/mission-control/messages", { task_id: "t" }, "content"],
    ["/api/mission-control/messages", { task_id: "t", content: "hi", actor_type: "robot" }, "actor_type"],
    ["/api/mission-control/documents", { task_id: "t", content: "c" }, "title"],
    ["/api/mission-control/documents", { task_id: "t", title: "c" }, "content"],
  ])("%s with %j → 400 naming %s", async (path, body, field) => {
    const res = await post(path, JSON.stringify(body));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "invalid_payload", details: { field } });
    expect(res.body["error"]).toContain(field);
  });

  it("answers 400 for invalid JSON, 413 for an oversize body, 404 for unknown routes", async () => {
    expect((await post("/api/mission-control/tasks", "{nope")).status).toBe(400);
    expect((await post("/api/mission-control/tasks", "[1]")).body).toMatchObject({ code: "invalid_json" });
    const big = JSON.stringify({ title: "big", description: "x".repeat(1_100_000) });
    expect((await post("/api/mission-control/tasks", big)).status).toBe(413);
    const res = await fetch(`${lite.url}/api/mission-control/nothing`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "not_found" });
  });

  it("answers 400 for a bad limit or cursor", async () => {
    const token = await tokenFor("alice")();
    for (const query of ["limit=0", "limit=abc", "cursor=bogus"]) {
      const res = await fetch(`${lite.url}/api/mission-control/tasks?${query}`, { headers: { "x-agent-token": token } });
      expect(res.status, query).toBe(400);
    }
  });
});

describe("client failures", () => {
  it("classifies a refused connection as a retryable network error", async () => {
    const gone = await startLite();
    await gone.close();
    const err = await failure(clientFor(gone, "alice").capabilities());
    expect(err).toMatchObject({ status: 0, code: "network_error", retryable: true });
  });

  it("treats a 2xx that is not the contract's JSON as an invalid response", async () => {
    const client = createControlPlaneClient({
      baseUrl: "http://backend.invalid",
      token: () => Promise.resolve("t"),
      fetch: () => Promise.resolve(new Response("<html>", { status: 200 })),
    });
    expect(await failure(client.capabilities())).toMatchObject({ code: "invalid_response", retryable: false });
    const noId = createControlPlaneClient({
      baseUrl: "http://backend.invalid",
      token: () => Promise.resolve("t"),
      fetch: () => Promise.resolve(Response.json({ title: "x" })),
    });
    expect(await failure(noId.createTask({ title: "x" }, { idempotencyKey: "k" }))).toMatchObject({ code: "invalid_response" });
  });

  it("refuses a create without an idempotency key before sending anything", async () => {
    const before = lite.state.requests.length;
    const client = clientFor(lite, "alice");
    await expect(client.createTask({ title: "x" }, { idempotencyKey: "" })).rejects.toThrow(TypeError);
    expect(lite.state.requests.length).toBe(before);
  });
});
