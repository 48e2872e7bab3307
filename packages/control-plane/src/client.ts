import { ControlPlaneError, isRetryableStatus, parseRetryAfter } from "./errors.js";
import type {
  Capabilities,
  CreateDocumentInput,
  CreateTaskInput,
  Document,
  Message,
  PostMessageInput,
  Task,
  TaskPage,
  ToolDescriptor,
} from "./types.js";

export const AGENT_TOKEN_HEADER = "X-Agent-Token";
export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";
export const TRACE_ID_HEADER = "X-Trace-Id";

/** v1 used 30 s per call; the runtime usually passes its own, tighter budget. */
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ControlPlaneClientOptions {
  /** Backend root, e.g. `http://127.0.0.1:9001` (a path prefix is kept). */
  baseUrl: string;
  /** Returns a freshly minted `X-Agent-Token`; called once per request. */
  token: () => Promise<string>;
  /** Per-call limit covering connect, response headers and body. */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

export interface CallOptions {
  /** Aborts the call (e.g. the caller of the agent disconnected); surfaces as code `aborted`. */
  signal?: AbortSignal;
  /** Sent as `X-Trace-Id` so backend logs join the Clasper trace. */
  traceId?: string;
}

export interface CreateOptions extends CallOptions {
  /** Same key on every retry of one logical create; see `idempotencyKey()`. */
  idempotencyKey: string;
}

export interface ListTasksOptions {
  limit?: number;
  cursor?: string;
}

export interface ControlPlaneClient {
  capabilities(options?: CallOptions): Promise<Capabilities>;
  listTasks(query?: ListTasksOptions, options?: CallOptions): Promise<TaskPage>;
  createTask(input: CreateTaskInput, options: CreateOptions): Promise<Task>;
  postMessage(input: PostMessageInput, options: CreateOptions): Promise<Message>;
  createDocument(input: CreateDocumentInput, options: CreateOptions): Promise<Document>;
  listTools(options?: CallOptions): Promise<ToolDescriptor[]>;
  /** Runs a backend tool; resolves to the tool's JSON result as the backend returned it. */
  callTool(name: string, args: Record<string, unknown>, options: CreateOptions): Promise<unknown>;
}

interface Request {
  operation: string;
  method: "GET" | "POST";
  path: string;
  body?: Record<string, unknown>;
  idempotencyKey?: string;
  options: CallOptions | undefined;
}

/** The Control Plane Contract v1 client the runtime acts through (docs/CONTROL_PLANE.md). */
export function createControlPlaneClient(opts: ControlPlaneClientOptions): ControlPlaneClient {
  const base = opts.baseUrl.replace(/\/+$/, "");
  if (!/^https?:\/\//.test(base)) throw new TypeError(`Control Plane baseUrl must be an http(s) URL, got "${opts.baseUrl}"`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const doFetch = opts.fetch ?? globalThis.fetch;

  async function call(req: Request): Promise<unknown> {
    const headers: Record<string, string> = {
      accept: "application/json",
      [AGENT_TOKEN_HEADER]: await opts.token(),
    };
    if (req.idempotencyKey !== undefined) headers[IDEMPOTENCY_KEY_HEADER] = req.idempotencyKey;
    if (req.options?.traceId) headers[TRACE_ID_HEADER] = req.options.traceId;
    let body: string | undefined;
    if (req.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(req.body);
    }

    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = req.options?.signal ? AbortSignal.any([timeout, req.options.signal]) : timeout;
    const fail = (init: Omit<ConstructorParameters<typeof ControlPlaneError>[0], "operation">) =>
      new ControlPlaneError({ ...init, operation: req.operation });

    let status = 0;
    let text: string;
    let retryAfter: string | null = null;
    try {
      const res = await doFetch(`${base}${req.path}`, { method: req.method, headers, body, signal });
      status = res.status;
      retryAfter = res.headers.get("retry-after");
      // The body read is under the same signal, so a backend that stalls mid-body still times out.
      text = await res.text();
    } catch (err) {
      if (timeout.aborted) {
        throw fail({ status, code: "timeout", retryable: true, cause: err,
          message: `Failed to ${req.operation}: no response within ${timeoutMs} ms` });
      }
      if (req.options?.signal?.aborted) {
        throw fail({ status, code: "aborted", retryable: false, cause: err,
          message: `Failed to ${req.operation}: aborted by the caller` });
      }
      throw fail({ status, code: "network_error", retryable: true, cause: err,
        message: `Failed to ${req.operation}: ${describeNetworkError(err)}` });
    }

    const parsed = parseJson(text);
    if (status < 200 || status > 299) {
      const detail = errorBody(parsed);
      throw fail({
        status,
        code: detail.code ?? `http_${status}`,
        retryable: isRetryableStatus(status),
        retryAfterMs: parseRetryAfter(retryAfter),
        message: `Failed to ${req.operation}: ${status}${detail.error ? ` ${detail.error}` : ""}`,
      });
    }
    if (parsed === undefined) {
      throw fail({ status, code: "invalid_response", retryable: false,
        message: `Failed to ${req.operation}: response is not JSON` });
    }
    return parsed;
  }

  function expectObject<T>(value: unknown, operation: string, required: string[]): T {
    const missing = isRecord(value) ? required.filter((k) => typeof value[k] !== "string") : required;
    if (!isRecord(value) || missing.length > 0) {
      throw new ControlPlaneError({ status: 200, code: "invalid_response", retryable: false, operation,
        message: `Failed to ${operation}: response lacks ${missing.join(", ")}` });
    }
    return value as T;
  }

  const create = async <T>(operation: string, path: string, input: object, options: CreateOptions, required: string[]) => {
    if (!options?.idempotencyKey) throw new TypeError(`${operation} needs an idempotencyKey`);
    const body = { ...stripUndefined(input), idempotency_key: options.idempotencyKey };
    const result = await call({ operation, method: "POST", path, body, idempotencyKey: options.idempotencyKey, options });
    return expectObject<T>(result, operation, required);
  };

  return {
    async capabilities(options) {
      const operation = "get capabilities";
      const result = await call({ operation, method: "GET", path: "/api/mission-control/capabilities", options });
      const caps = expectObject<Capabilities>(result, operation, ["contract_version"]);
      if (!isRecord(caps.features)) caps.features = {} as Capabilities["features"];
      return caps;
    },

    async listTasks(query = {}, options) {
      const operation = "list tasks";
      const limit = query.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1) throw new TypeError("listTasks limit must be a positive integer");
      const params = new URLSearchParams({ limit: String(limit) });
      if (query.cursor) params.set("cursor", query.cursor);
      const result = await call({ operation, method: "GET", path: `/api/mission-control/tasks?${params}`, options });
      if (!isRecord(result) || !Array.isArray(result["items"])) {
        throw new ControlPlaneError({ status: 200, code: "invalid_response", retryable: false, operation,
          message: `Failed to ${operation}: response has no items array` });
      }
      return result as unknown as TaskPage;
    },

    createTask: (input, options) => create<Task>("create task", "/api/mission-control/tasks", input, options, ["id"]),
    postMessage: (input, options) => create<Message>("post message", "/api/mission-control/messages", input, options, ["id"]),
    createDocument: (input, options) =>
      create<Document>("create document", "/api/mission-control/documents", input, options, ["id"]),

    async listTools(options) {
      const operation = "list tools";
      const result = await call({ operation, method: "GET", path: "/api/tools", options });
      if (!isRecord(result) || !Array.isArray(result["tools"])) {
        throw new ControlPlaneError({ status: 200, code: "invalid_response", retryable: false, operation,
          message: `Failed to ${operation}: response has no tools array` });
      }
      return (result["tools"] as unknown[]).filter(isToolDescriptor);
    },

    async callTool(name, args, options) {
      if (!options?.idempotencyKey) throw new TypeError("callTool needs an idempotencyKey");
      const body: Record<string, unknown> = { arguments: args, idempotency_key: options.idempotencyKey };
      if (options.traceId) body["trace_id"] = options.traceId;
      return call({ operation: `call tool ${name}`, method: "POST", path: `/api/tools/${encodeURIComponent(name)}`,
        body, idempotencyKey: options.idempotencyKey, options });
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isToolDescriptor(value: unknown): value is ToolDescriptor {
  return isRecord(value) && typeof value["name"] === "string" && value["name"] !== "";
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The contract's error body `{error, code?}`; only strings are taken, and capped, from a foreign server. */
function errorBody(value: unknown): { error?: string; code?: string } {
  if (!isRecord(value)) return {};
  const pick = (v: unknown) => (typeof v === "string" && v !== "" ? v.slice(0, 300) : undefined);
  const error = pick(value["error"]);
  const code = pick(value["code"]);
  return { ...(error ? { error } : {}), ...(code ? { code } : {}) };
}

function describeNetworkError(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = (cause as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return cause instanceof Error ? cause.message : "network error";
}

function stripUndefined(input: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}
