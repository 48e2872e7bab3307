import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Ajv, type ValidateFunction } from "ajv";
import { AuthConfigError, AuthError, MIN_SECRET_BYTES, verifyAgentToken, type AgentTokenClaims } from "@clasper/auth";
import { uuidv7 } from "@clasper/core";
import { CONTRACT_VERSION, type Capabilities } from "../types.js";
import { errorBody, LiteHttpError, readJsonObject, sendJson } from "./http.js";
import { callToolBody, createDocumentBody, createTaskBody, parseBody, postMessageBody } from "./schemas.js";
import { bodyHash, LiteState, type Customer, type Owner, type RequestRecord, type StoredTask } from "./state.js";
import { SAMPLE_TOOLS, type LiteTool } from "./tools.js";

export const LITE_VERSION = "0.1.0";
const MAX_PAGE = 100;

/** A fault injected by a test into the next request(s) to one path. */
export type LiteFault =
  /** Answer with this status before doing anything (nothing is committed). */
  | { status: number; error?: string; retryAfterSeconds?: number }
  /** Wait, then handle the request normally (it commits even if the client gave up). */
  | { delayMs: number }
  /**
   * Handle and commit the request, then never answer: the client times out although the create
   * happened. With `reset: true` the connection is cut at once instead.
   */
  | { dropResponseAfterCommit: true; reset?: boolean };

export interface MissionControlLiteOptions {
  /** The `AGENT_JWT_SECRET` shared with Clasper (≥ 32 bytes). */
  agentSecret: string;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Extra tools besides `echo`, `lookup_customer` and `slow` (a same-named one replaces a sample). */
  tools?: LiteTool[];
  /** Customers of users (of a tenant) for `lookup_customer`. */
  customers?: readonly (Owner & { customers: Customer[] })[];
}

export interface MissionControlLite {
  /** `http://host:port`, ready for `createControlPlaneClient({ baseUrl })`. */
  url: string;
  state: LiteState;
  /** Applies `fault` to the next `times` requests to `target`: a path, or `"POST /path"`. */
  failNext(target: string, fault: LiteFault, times?: number): void;
  close(): Promise<void>;
}

interface Ctx {
  req: IncomingMessage;
  url: URL;
  /** The parsed JSON body of a POST (read before any injected delay, as a real server would). */
  raw: Record<string, unknown>;
  claims: AgentTokenClaims;
  traceId: string | null;
  record: RequestRecord;
}

interface Reply {
  status: number;
  body: unknown;
}

type Handler = (ctx: Ctx) => Promise<Reply> | Reply;

/**
 * mission-control-lite: an in-memory reference backend for Control Plane Contract v1. It is what
 * Clasper's tests act on and what a user runs to try Clasper locally; it is not a product backend.
 */
export async function createMissionControlLite(options: MissionControlLiteOptions): Promise<MissionControlLite> {
  if (new TextEncoder().encode(options.agentSecret ?? "").byteLength < MIN_SECRET_BYTES) {
    throw new AuthConfigError(`AGENT_JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  const state = new LiteState();
  for (const { customers, ...owner } of options.customers ?? []) state.setCustomers(owner, customers);
  const tools = new Map<string, { tool: LiteTool; validate: ValidateFunction }>();
  const ajv = new Ajv({ allErrors: false, strict: false });
  for (const tool of [...SAMPLE_TOOLS, ...(options.tools ?? [])]) {
    tools.set(tool.name, { tool, validate: ajv.compile(tool.parameters) });
  }
  const faults = new Map<string, LiteFault[]>();
  const closing = new AbortController();

  const handlers = new Map<string, Handler>([
    ["GET /api/mission-control/capabilities", () => ({ status: 200, body: capabilities() })],
    ["GET /api/mission-control/tasks", listTasks],
    ["POST /api/mission-control/tasks", createTask],
    ["POST /api/mission-control/messages", postMessage],
    ["POST /api/mission-control/documents", createDocument],
    ["GET /api/tools", () => ({ status: 200, body: { tools: [...tools.values()].map(({ tool }) => describe(tool)) } })],
  ]);
  const publicHandlers = new Map<string, () => Reply>([
    ["GET /health", () => ({ status: 200, body: { status: "ok" } })],
    ["GET /api/capabilities", () => ({ status: 200, body: discovery() })],
  ]);

  function capabilities(): Capabilities {
    return {
      contract_version: CONTRACT_VERSION,
      features: {
        tasks: true,
        messages: true,
        documents: true,
        notifications_dispatch: false,
        events_sse: false,
        heartbeat: false,
        standup: false,
        tool_requests: false,
      },
    };
  }

  function discovery() {
    return {
      version: LITE_VERSION,
      contract_version: CONTRACT_VERSION,
      features: ["task_list", "task_create", "message_post", "document_post", "tool_discover", "tool_execute"],
      endpoints: [...handlers.keys(), "POST /api/tools/{name}"],
    };
  }

  function listTasks(ctx: Ctx): Reply {
    const limitParam = ctx.url.searchParams.get("limit");
    const limit = limitParam === null ? 50 : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1) throw new LiteHttpError(400, "invalid_query", "limit must be an integer ≥ 1");
    const after = decodeCursor(ctx.url.searchParams.get("cursor"));
    const mine = state.tasksOf(ctx.claims).filter((t) => t.seq > after);
    const page = mine.slice(0, Math.min(limit, MAX_PAGE));
    const last = page.at(-1);
    return {
      status: 200,
      body: {
        items: page.map(publicTask),
        next_cursor: last && mine.length > page.length ? encodeCursor(last.seq) : null,
      },
    };
  }

  async function createTask(ctx: Ctx): Promise<Reply> {
    const raw = ctx.raw;
    const input = parseBody(createTaskBody, raw);
    return idempotent(ctx, "tasks", raw, () => {
      const task: StoredTask = {
        id: uuidv7(),
        tenant_id: ctx.claims.tenantId,
        user_id: ctx.claims.userId,
        title: input.title,
        status: input.status ?? "in_progress",
        description: input.description ?? null,
        metadata: input.metadata ?? null,
        created_at: new Date().toISOString(),
        seq: state.nextSeq(),
      };
      state.tasks.push(task);
      return publicTask(task);
    });
  }

  async function postMessage(ctx: Ctx): Promise<Reply> {
    const raw = ctx.raw;
    const input = parseBody(postMessageBody, raw);
    return idempotent(ctx, "messages", raw, () => {
      ownedTask(ctx, input.task_id);
      const message = {
        id: uuidv7(),
        user_id: ctx.claims.userId,
        task_id: input.task_id,
        content: input.content,
        actor_type: input.actor_type ?? "agent",
        actor_id: input.actor_id ?? null,
        agent_role: input.agent_role ?? null,
        attachments: input.attachments ?? null,
        created_at: new Date().toISOString(),
      };
      state.messages.push(message);
      const { user_id: _user, ...body } = message;
      return body;
    });
  }

  async function createDocument(ctx: Ctx): Promise<Reply> {
    const raw = ctx.raw;
    const input = parseBody(createDocumentBody, raw);
    return idempotent(ctx, "documents", raw, () => {
      ownedTask(ctx, input.task_id);
      const doc = {
        id: uuidv7(),
        user_id: ctx.claims.userId,
        task_id: input.task_id,
        title: input.title,
        content: input.content,
        doc_type: input.doc_type ?? "note",
        created_at: new Date().toISOString(),
      };
      state.documents.push(doc);
      return { id: doc.id, title: doc.title, doc_type: doc.doc_type, task_id: doc.task_id, created_at: doc.created_at };
    });
  }

  async function callTool(ctx: Ctx, name: string): Promise<Reply> {
    const entry = tools.get(name);
    if (!entry) throw new LiteHttpError(404, "tool_not_found", "tool not found");
    const raw = ctx.raw;
    const input = parseBody(callToolBody, raw);
    if (!entry.validate(input.arguments)) {
      const first = entry.validate.errors?.[0];
      const where = first?.instancePath ? `arguments${first.instancePath.replaceAll("/", ".")}` : "arguments";
      throw new LiteHttpError(400, "invalid_arguments", `invalid arguments: ${where} ${first?.message ?? "is invalid"}`);
    }
    const traceId = input.trace_id ?? ctx.traceId;
    return idempotent(ctx, `tool:${name}`, raw, () => {
      state.toolCalls.push({ name, tenant_id: ctx.claims.tenantId, user_id: ctx.claims.userId, arguments: input.arguments, trace_id: traceId });
      return entry.tool.run(input.arguments, {
        tenantId: ctx.claims.tenantId,
        userId: ctx.claims.userId,
        agentRole: ctx.claims.agentRole,
        traceId,
        state,
        signal: closing.signal,
      });
    });
  }

  function ownedTask(ctx: Ctx, taskId: string): StoredTask {
    const task = state.findTask(ctx.claims, taskId);
    if (!task) throw new LiteHttpError(404, "task_not_found", "task not found");
    return task;
  }

  /** The key from the body field (contract v1) or the `Idempotency-Key` header; both must agree. */
  function keyOf(ctx: Ctx, raw: Record<string, unknown>): string | null {
    const header = ctx.req.headers["idempotency-key"];
    const fromHeader = typeof header === "string" && header !== "" ? header : null;
    const fromBody = typeof raw["idempotency_key"] === "string" ? raw["idempotency_key"] : null;
    if (fromHeader && fromBody && fromHeader !== fromBody) {
      throw new LiteHttpError(400, "idempotency_key_mismatch", "Idempotency-Key header and idempotency_key field differ");
    }
    return fromBody ?? fromHeader;
  }

  /**
   * Contract §7.4: same key and same body → the original response; same key, other body → 409.
   * The entry is stored before the create can yield, so a retry racing the original (the client
   * timed out while the first attempt was still running) waits for it instead of creating twice.
   */
  async function idempotent(ctx: Ctx, resource: string, raw: Record<string, unknown>, run: () => unknown): Promise<Reply> {
    const key = keyOf(ctx, raw);
    ctx.record.idempotency_key = key;
    if (key === null) return { status: 200, body: await run() };
    const owner = ctx.claims;
    const hash = bodyHash(raw);
    const seen = state.recall(owner, resource, key);
    if (seen) {
      if (seen.bodyHash !== hash) throw new LiteHttpError(409, "idempotency_conflict", "idempotency_key conflict");
      ctx.record.replayed = true;
      return { status: 200, body: await seen.body };
    }
    // An async IIFE runs `run` synchronously up to its first await: a plain create commits here.
    const entry = { bodyHash: hash, body: (async () => run())() };
    state.remember(owner, resource, key, entry);
    entry.body.catch(() => state.forget(owner, resource, key, entry));
    return { status: 200, body: await entry.body };
  }

  async function authenticate(req: IncomingMessage): Promise<AgentTokenClaims> {
    const header = req.headers["x-agent-token"];
    const token = Array.isArray(header) ? header[0] : header;
    if (!token) throw new LiteHttpError(401, "missing_token", "X-Agent-Token header is required");
    try {
      return await verifyAgentToken(options.agentSecret, token);
    } catch (err) {
      if (err instanceof AuthError) throw new LiteHttpError(401, err.code, err.message);
      throw err;
    }
  }

  function takeFault(method: string, path: string): LiteFault | undefined {
    for (const target of [`${method} ${path}`, path]) {
      const queue = faults.get(target);
      if (queue?.length) {
        const fault = queue.shift();
        if (queue.length === 0) faults.delete(target);
        return fault;
      }
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://mission-control-lite");
    const method = req.method ?? "GET";
    const route = `${method} ${url.pathname}`;
    const traceHeader = req.headers["x-trace-id"];
    const record: RequestRecord = {
      method,
      path: url.pathname,
      status: 0,
      tenant_id: null,
      user_id: null,
      idempotency_key: null,
      trace_id: typeof traceHeader === "string" ? traceHeader : null,
      replayed: false,
      fault: null,
    };
    let fault: LiteFault | undefined;
    let reply: Reply;
    let headers: Record<string, string> = {};
    try {
      const open = publicHandlers.get(route);
      const toolName = method === "POST" ? /^\/api\/tools\/([^/]+)$/.exec(url.pathname)?.[1] : undefined;
      const handler = handlers.get(route);
      if (!open && !handler && toolName === undefined) {
        throw new LiteHttpError(404, "not_found", `no route for ${method} ${url.pathname}`);
      }
      fault = takeFault(method, url.pathname);
      if (fault) record.fault = JSON.stringify(fault);
      if (fault && "status" in fault) {
        if (fault.retryAfterSeconds !== undefined) headers = { "retry-after": String(fault.retryAfterSeconds) };
        throw new LiteHttpError(fault.status, "injected_fault", fault.error ?? "injected fault");
      }
      if (open) {
        if (fault && "delayMs" in fault) await sleep(fault.delayMs, undefined, { signal: closing.signal });
        reply = open();
      } else {
        const claims = await authenticate(req);
        record.tenant_id = claims.tenantId;
        record.user_id = claims.userId;
        const raw = method === "POST" ? await readJsonObject(req) : {};
        // A slow backend: the request has arrived in full and will commit, however long it takes.
        if (fault && "delayMs" in fault) await sleep(fault.delayMs, undefined, { signal: closing.signal });
        const ctx: Ctx = { req, url, raw, claims, traceId: record.trace_id, record };
        reply = toolName !== undefined ? await callTool(ctx, decodeURIComponent(toolName)) : await handler!(ctx);
      }
    } catch (err) {
      if (err instanceof LiteHttpError) {
        reply = { status: err.status, body: errorBody(err) };
      } else if (closing.signal.aborted || req.destroyed) {
        // The server is closing or the client went away mid-request: nobody to answer.
        res.destroy();
        return;
      } else {
        console.error("mission-control-lite: unexpected error", err);
        reply = { status: 500, body: { error: "internal error", code: "internal" } };
      }
    }
    record.status = reply.status;
    state.requests.push(record);
    if (fault && "dropResponseAfterCommit" in fault && reply.status < 300) {
      record.status = 0;
      // Committed, but the client never hears of it: either the socket is cut now, or it hangs
      // until the client gives up (its timeout) or the server closes.
      if (fault.reset) res.destroy();
      return;
    }
    if (record.replayed) headers["idempotent-replayed"] = "true";
    sendJson(res, reply.status, reply.body, headers);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error("mission-control-lite: request failed", err);
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const shown = host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host;

  return {
    url: `http://${shown}:${address.port}`,
    state,
    failNext(target, fault, times = 1) {
      const queue = faults.get(target) ?? [];
      for (let i = 0; i < times; i++) queue.push(fault);
      faults.set(target, queue);
    },
    close() {
      closing.abort();
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function publicTask(task: StoredTask) {
  return {
    id: task.id,
    title: task.title,
    status: task.status,
    description: task.description,
    metadata: task.metadata,
    created_at: task.created_at,
  };
}

function describe(tool: LiteTool) {
  return { name: tool.name, description: tool.description, parameters: tool.parameters };
}

function encodeCursor(seq: number): string {
  return Buffer.from(`t:${seq}`).toString("base64url");
}

function decodeCursor(cursor: string | null): number {
  if (cursor === null || cursor === "") return 0;
  const match = /^t:(\d+)$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match) throw new LiteHttpError(400, "invalid_cursor", "cursor is not one this server issued");
  return Number(match[1]);
}
