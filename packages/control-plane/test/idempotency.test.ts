import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { idempotencyKey, withRetry, type MissionControlLite } from "../src/index.js";
import { clientFor, eventually, failure, startLite } from "./helpers.js";

let lite: MissionControlLite;
beforeAll(async () => {
  lite = await startLite();
});
afterAll(() => lite.close());
beforeEach(() => lite.state.clear());

const TASKS = "POST /api/mission-control/tasks";


describe("idempotencyKey", () => {
  it("is deterministic in (trace, step, call) and differs when any of them does", () => {
    const k = idempotencyKey("trace-1", 2, 0);
    expect(k).toBe(idempotencyKey("trace-1", 2, 0));
    expect(k).toMatch(/^clasper-[0-9a-f]{40}$/);
    const others = [idempotencyKey("trace-2", 2, 0), idempotencyKey("trace-1", 3, 0), idempotencyKey("trace-1", 2, 1), idempotencyKey("trace-1", 20, "")];
    expect(new Set([k, ...others]).size).toBe(5);
    // The separator cannot be forged through the parts.
    expect(idempotencyKey("a", "1:2", 3)).not.toBe(idempotencyKey("a:1", "2", 3));
    expect(() => idempotencyKey("", 0, 0)).toThrow(TypeError);
  });
});

describe("contract §7.4 idempotency", () => {
  it.each([
    ["task", (c: ReturnType<typeof clientFor>, k: string, _t: string) => c.createTask({ title: "Once" }, { idempotencyKey: k })],
    ["message", (c: ReturnType<typeof clientFor>, k: string, t: string) => c.postMessage({ task_id: t, content: "Once" }, { idempotencyKey: k })],
    ["document", (c: ReturnType<typeof clientFor>, k: string, t: string) => c.createDocument({ task_id: t, title: "Plan", content: "Once" }, { idempotencyKey: k })],
    ["tool call", (c: ReturnType<typeof clientFor>, k: string, _t: string) => c.callTool("echo", { message: "Once" }, { idempotencyKey: k })],
  ])("a repeated %s create returns the original response and creates nothing new", async (_kind, create) => {
    const client = clientFor(lite, "alice");
    const task = await client.createTask({ title: "Parent" }, { idempotencyKey: "parent" });
    const first = await create(client, "repeat-key", task.id);
    const counts = () => [lite.state.tasks.length, lite.state.messages.length, lite.state.documents.length, lite.state.toolCalls.length];
    const before = counts();
    const second = await create(client, "repeat-key", task.id);
    expect(second).toEqual(first);
    expect(counts()).toEqual(before);
    expect(lite.state.requests.at(-1)).toMatchObject({ replayed: true, idempotency_key: "repeat-key", status: 200 });
  });

  it("answers 409 when the key is reused with a different body", async () => {
    const client = clientFor(lite, "alice");
    const task = await client.createTask({ title: "Original" }, { idempotencyKey: "k1" });
    const err = await failure(client.createTask({ title: "Different" }, { idempotencyKey: "k1" }));
    expect(err).toMatchObject({ status: 409, code: "idempotency_conflict", retryable: false });
    expect(err.message).toBe("Failed to create task: 409 idempotency_key conflict");
    const msg = await client.postMessage({ task_id: task.id, content: "a" }, { idempotencyKey: "m1" });
    expect(msg.content).toBe("a");
    expect(await failure(client.postMessage({ task_id: task.id, content: "b" }, { idempotencyKey: "m1" }))).toMatchObject({ status: 409 });
    expect(lite.state.tasks.map((t) => t.title)).toEqual(["Original"]);
    expect(lite.state.messages.map((m) => m.content)).toEqual(["a"]);
  });

  it("treats key order and spacing as the same body (canonical JSON)", async () => {
    const token = await import("./helpers.js").then((h) => h.tokenFor("alice")());
    const send = (body: string) =>
      fetch(`${lite.url}/api/mission-control/tasks`, { method: "POST", headers: { "x-agent-token": token, "content-type": "application/json" }, body });
    const a = (await (await send('{"title":"T","status":"todo","idempotency_key":"c1"}')).json()) as { id: string };
    const res = await send('{ "idempotency_key": "c1", "status": "todo",  "title": "T" }');
    expect(res.status).toBe(200);
    expect(res.headers.get("idempotent-replayed")).toBe("true");
    expect(((await res.json()) as { id: string }).id).toBe(a.id);
  });

  it("concurrent creates with one key make exactly one task", async () => {
    const client = clientFor(lite, "alice");
    const results = await Promise.all(Array.from({ length: 8 }, () => client.createTask({ title: "Race" }, { idempotencyKey: "race" })));
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(lite.state.tasks).toHaveLength(1);
  });

  it("concurrent tool calls with one key run the tool once, even while it is still running", async () => {
    const client = clientFor(lite, "alice");
    const results = await Promise.all(Array.from({ length: 4 }, () => client.callTool("slow", { ms: 100 }, { idempotencyKey: "slow-once" })));
    expect(results).toEqual(Array.from({ length: 4 }, () => ({ slept_ms: 100 })));
    expect(lite.state.toolCalls).toHaveLength(1);
  });

  it("a failed create does not burn its key", async () => {
    const client = clientFor(lite, "alice");
    const err = await failure(client.callTool("lookup_customer", { customer_id: "later" }, { idempotencyKey: "retry-me" }));
    expect(err.status).toBe(404);
    lite.state.setCustomers({ tenantId: "tenant-1", userId: "alice" }, [{ id: "later", name: "Later Inc" }]);
    expect(await client.callTool("lookup_customer", { customer_id: "later" }, { idempotencyKey: "retry-me" })).toEqual({
      customer: { id: "later", name: "Later Inc" },
    });
  });
});

describe("retries after failures (the runtime's view)", () => {
  it("a timeout after the create committed, then a retry with the same key, leaves one task", async () => {
    lite.failNext(TASKS, { dropResponseAfterCommit: true });
    const client = clientFor(lite, "alice", 300);
    const k = idempotencyKey("trace-timeout", 1, 0);

    const err = await failure(client.createTask({ title: "Exactly once" }, { idempotencyKey: k }));
    expect(err).toMatchObject({ code: "timeout", retryable: true, status: 0 });
    expect(lite.state.tasks).toHaveLength(1); // it did commit

    const task = await client.createTask({ title: "Exactly once" }, { idempotencyKey: k });
    expect(task.id).toBe(lite.state.tasks[0]!.id);
    expect(lite.state.tasks).toHaveLength(1);
    const posts = lite.state.requests.filter((r) => r.method === "POST");
    expect(posts.map((r) => r.idempotency_key)).toEqual([k, k]);
    expect(posts.map((r) => r.replayed)).toEqual([false, true]);
  });

  it("withRetry recovers from a reset after commit with one task and the same key", async () => {
    lite.failNext(TASKS, { dropResponseAfterCommit: true, reset: true });
    const client = clientFor(lite, "alice");
    const k = idempotencyKey("trace-reset", 1, 0);
    const retries: string[] = [];
    const task = await withRetry(() => client.createTask({ title: "Reset" }, { idempotencyKey: k }), {
      baseDelayMs: 10,
      onRetry: (e) => retries.push(e.code),
    });
    expect(retries).toEqual(["network_error"]);
    expect(lite.state.tasks.map((t) => t.id)).toEqual([task.id]);
  });

  it("a retry that overtakes the still-running original does not duplicate", async () => {
    // The first attempt sleeps past the client timeout, then commits; the retry lands meanwhile.
    lite.failNext(TASKS, { delayMs: 400 });
    const client = clientFor(lite, "alice", 150);
    const k = idempotencyKey("trace-overtake", 1, 0);
    const task = await withRetry(() => client.createTask({ title: "Overtake" }, { idempotencyKey: k }), { baseDelayMs: 5 });
    await eventually(() => lite.state.requests.filter((r) => r.method === "POST").length === 2);
    expect(lite.state.tasks.map((t) => t.id)).toEqual([task.id]);
    // The retry committed first; the original, finishing late, was answered from the store.
    const posts = lite.state.requests.filter((r) => r.method === "POST");
    expect(posts.map((r) => [r.fault !== null, r.replayed, r.status])).toEqual([
      [false, false, 200],
      [true, true, 200],
    ]);
  });

  it("marks 429 (with Retry-After) and 5xx retryable, and retries them with the same key", async () => {
    lite.failNext(TASKS, { status: 429, retryAfterSeconds: 2 });
    const client = clientFor(lite, "alice");
    const limited = await failure(client.createTask({ title: "x" }, { idempotencyKey: "rl" }));
    expect(limited).toMatchObject({ status: 429, code: "injected_fault", retryable: true, retryAfterMs: 2_000 });

    lite.failNext(TASKS, { status: 503 }, 2);
    const delays: number[] = [];
    const task = await withRetry(() => client.createTask({ title: "x" }, { idempotencyKey: "rl" }), {
      baseDelayMs: 1,
      onRetry: (_e, _attempt, delay) => delays.push(delay),
    });
    expect(delays).toHaveLength(2);
    expect(lite.state.tasks.map((t) => t.id)).toEqual([task.id]);
    expect(new Set(lite.state.requests.map((r) => r.idempotency_key ?? "rl"))).toEqual(new Set(["rl"]));
  });

  it("does not retry a 4xx, and gives up after the attempt limit", async () => {
    const client = clientFor(lite, "alice");
    let attempts = 0;
    await expect(
      withRetry(() => {
        attempts++;
        return client.postMessage({ task_id: "missing", content: "x" }, { idempotencyKey: "m" });
      }),
    ).rejects.toMatchObject({ status: 404 });
    expect(attempts).toBe(1);

    lite.failNext(TASKS, { status: 500 }, 5);
    attempts = 0;
    await expect(
      withRetry(() => {
        attempts++;
        return client.createTask({ title: "x" }, { idempotencyKey: "g" });
      }, { attempts: 3, baseDelayMs: 1 }),
    ).rejects.toMatchObject({ status: 500, retryable: true });
    expect(attempts).toBe(3);
    expect(lite.state.tasks).toHaveLength(0);
  });
});
