import { randomBytes } from "node:crypto";
import { AGENT_TOKEN_HEADER, createControlPlaneClient, type ControlPlaneClient } from "./client.js";
import { ControlPlaneError } from "./errors.js";
import { CONTRACT_VERSION } from "./types.js";

export interface ConformanceOptions {
  baseUrl: string;
  /** A valid `X-Agent-Token`, or a function minting one per request. */
  token: string | (() => Promise<string>);
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

export interface ConformanceResult {
  name: string;
  status: "passed" | "failed";
  error?: string;
  durationMs: number;
}

export interface ConformanceReport {
  baseUrl: string;
  passed: number;
  failed: number;
  results: ConformanceResult[];
}

interface Check {
  name: string;
  run(): Promise<void>;
}

class CheckFailed extends Error {}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

/** Runs `call` expecting it to fail with `status`; anything else fails the check. */
async function expectStatus(status: number, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (err) {
    if (err instanceof ControlPlaneError && err.status === status) return;
    throw new CheckFailed(`expected ${status}, got ${err instanceof ControlPlaneError ? err.status || err.code : String(err)}`);
  }
  throw new CheckFailed(`expected ${status}, got a success`);
}

/**
 * Checks a backend against Control Plane Contract v1: the six checks of the v1 suite plus what it
 * left out (401 on a missing or forged token, 409 on a conflicting idempotency key, 400 on a
 * missing field, repeats of every create, `limit`). Checks run in order; one whose prerequisite
 * failed fails with the reason instead of being skipped.
 */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const tokenSource = typeof options.token === "string" ? constant(options.token) : options.token;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const client: ControlPlaneClient = createControlPlaneClient({
    baseUrl: options.baseUrl,
    token: tokenSource,
    fetch: fetchImpl,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  const base = options.baseUrl.replace(/\/+$/, "");
  const run = `conformance-${Date.now()}-${randomBytes(4).toString("hex")}`;
  const taskBody = { title: "Conformance Task", status: "in_progress", metadata: { source: "conformance", run } };
  let taskId: string | undefined;
  const needTask = () => {
    expect(taskId, "taskId not set (create task failed)");
    return taskId;
  };

  const rawStatus = async (path: string, init: RequestInit): Promise<number> => {
    const res = await fetchImpl(`${base}${path}`, { ...init, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
    await res.arrayBuffer();
    return res.status;
  };

  const checks: Check[] = [
    {
      name: "capabilities endpoint",
      async run() {
        const caps = await client.capabilities();
        expect(caps.contract_version === CONTRACT_VERSION, `contract_version is ${JSON.stringify(caps.contract_version)}, expected "v1"`);
      },
    },
    {
      name: "rejects a request without X-Agent-Token",
      async run() {
        const status = await rawStatus("/api/mission-control/tasks?limit=1", { headers: { accept: "application/json" } });
        expect(status === 401, `expected 401, got ${status}`);
      },
    },
    {
      name: "rejects a forged X-Agent-Token",
      async run() {
        const forged = forge(await tokenSource());
        const status = await rawStatus("/api/mission-control/tasks?limit=1", { headers: { [AGENT_TOKEN_HEADER]: forged } });
        expect(status === 401, `expected 401, got ${status}`);
      },
    },
    {
      name: "rejects a task without a title",
      async run() {
        const status = await rawStatus("/api/mission-control/tasks", {
          method: "POST",
          headers: { [AGENT_TOKEN_HEADER]: await tokenSource(), "content-type": "application/json" },
          body: JSON.stringify({ status: "in_progress", idempotency_key: `${run}-untitled` }),
        });
        expect(status === 400, `expected 400, got ${status}`);
      },
    },
    ...createThenRepeat("create task with idempotency", "idempotency repeat create", async () => {
      const task = await client.createTask(taskBody, { idempotencyKey: `${run}-task` });
      taskId = task.id;
      return task;
    }),
    {
      name: "idempotency conflict",
      async run() {
        needTask();
        await expectStatus(409, () =>
          client.createTask({ ...taskBody, title: "Conformance Task (changed)" }, { idempotencyKey: `${run}-task` }),
        );
      },
    },
    {
      name: "list tasks",
      async run() {
        const id = needTask();
        let cursor: string | undefined;
        // Follow next_cursor: a busy tenant may have the new task past the first page.
        for (let page = 0; page < 50; page++) {
          const result = await client.listTasks({ limit: 50, ...(cursor ? { cursor } : {}) });
          if (result.items.some((t) => t.id === id)) return;
          if (!result.next_cursor) break;
          cursor = result.next_cursor;
        }
        throw new CheckFailed(`created task ${id} is not listed`);
      },
    },
    {
      name: "list tasks honours limit",
      async run() {
        const result = await client.listTasks({ limit: 1 });
        expect(result.items.length <= 1, `limit=1 returned ${result.items.length} items`);
      },
    },
    ...createThenRepeat("post message", "post message idempotency repeat", () =>
      client.postMessage(messageBody(needTask()), { idempotencyKey: `${run}-message` }),
    ),
    ...createThenRepeat("post document", "post document idempotency repeat", () =>
      client.createDocument(documentBody(needTask()), { idempotencyKey: `${run}-document` }),
    ),
  ];

  const results: ConformanceResult[] = [];
  for (const check of checks) {
    const started = performance.now();
    try {
      await check.run();
      results.push({ name: check.name, status: "passed", durationMs: elapsed(started) });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      results.push({ name: check.name, status: "failed", error, durationMs: elapsed(started) });
    }
  }
  const passed = results.filter((r) => r.status === "passed").length;
  return { baseUrl: options.baseUrl, passed, failed: results.length - passed, results };
}

/**
 * Two checks: `create` answers with a string id; `create` again (same key, same body) answers with
 * the same id. The create function must send the same request both times.
 */
function createThenRepeat(name: string, repeatName: string, create: () => Promise<{ id: string }>): Check[] {
  let firstId: string | undefined;
  return [
    {
      name,
      async run() {
        const created = await create();
        expect(typeof created.id === "string" && created.id !== "", "response has no string id");
        firstId = created.id;
      },
    },
    {
      name: repeatName,
      async run() {
        expect(firstId, `${name} failed, nothing to repeat`);
        const again = await create();
        expect(again.id === firstId, `repeat returned id ${again.id}, expected ${firstId}`);
      },
    },
  ];
}

const messageBody = (taskId: string) => ({
  task_id: taskId,
  content: "Conformance message",
  actor_type: "agent" as const,
  agent_role: "jarvis",
});

const documentBody = (taskId: string) => ({
  task_id: taskId,
  title: "Conformance Doc",
  content: "Conformance document content",
  doc_type: "plan",
});

function constant(token: string): () => Promise<string> {
  return () => Promise.resolve(token);
}

/** The token with its signature altered: a backend that does not verify signatures accepts it. */
function forge(token: string): string {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[2]) return `${token}x`;
  const sig = parts[2];
  return `${parts[0]}.${parts[1]}.${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`;
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

/** The report as a JUnit XML test suite, for CI systems that collect test results. */
export function toJUnitXml(report: ConformanceReport, suiteName = "clasper-control-plane"): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const total = report.results.reduce((sum, r) => sum + r.durationMs, 0);
  const cases = report.results.map((r) => {
    const open = `    <testcase classname="${xml(suiteName)}" name="${xml(r.name)}" time="${seconds(r.durationMs)}"`;
    return r.status === "passed" ? `${open}/>` : `${open}>\n      <failure message="${xml(r.error ?? "failed")}"/>\n    </testcase>`;
  });
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites tests="${report.results.length}" failures="${report.failed}" time="${seconds(total)}">`,
    `  <testsuite name="${xml(suiteName)}" tests="${report.results.length}" failures="${report.failed}" time="${seconds(total)}">`,
    ...cases,
    `  </testsuite>`,
    `</testsuites>`,
    ``,
  ].join("\n");
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
