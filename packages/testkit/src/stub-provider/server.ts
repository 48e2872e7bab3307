import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { anthropicMessages } from "./protocols/anthropic-messages.js";
import { openAICompletions } from "./protocols/openai-completions.js";
import { openAIResponses } from "./protocols/openai-responses.js";
import type { WireProtocol } from "./protocols/protocol.js";
import { resolveTurn } from "./turn.js";
import type { RecordedRequest, Responder, ScriptedTurn, StubProvider, StubProviderOptions } from "./types.js";

const PROTOCOLS: readonly WireProtocol[] = [openAICompletions, openAIResponses, anthropicMessages];

/**
 * Routes by the endpoint's last segments, so a base URL with or without `/v1` (or with it twice)
 * still reaches the right protocol; the recorded path shows what the client actually sent.
 */
function route(method: string | undefined, pathname: string): WireProtocol | undefined {
  if (method !== "POST") return undefined;
  const path = pathname.replace(/\/+$/, "");
  return PROTOCOLS.find((protocol) => path.endsWith(protocol.path.slice("/v1".length)));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendPayload(res, status, JSON.stringify(body), headers);
}

function sendPayload(res: ServerResponse, status: number, payload: string, headers: Record<string, string>): void {
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

/** Sends `data` after the headers, waits until the client can have read it, then resets the connection. */
async function resetAfter(res: ServerResponse, data: string): Promise<void> {
  res.flushHeaders();
  if (data.length > 0) await new Promise<void>((resolve) => res.write(data, () => resolve()));
  await sleep(25);
  const socket = res.socket as (Socket & { resetAndDestroy?: () => Socket }) | null;
  if (socket?.resetAndDestroy) socket.resetAndDestroy();
  else socket?.destroy();
}

/**
 * A local LLM provider answering OpenAI Chat Completions, OpenAI Responses and Anthropic Messages
 * on one port, in their real wire formats, from a per-test script.
 */
export async function startStubProvider(options: StubProviderOptions = {}): Promise<StubProvider> {
  const defaultLatencyMs = options.defaultLatencyMs ?? 0;
  const requests: RecordedRequest[] = [];
  const queue: ScriptedTurn[] = [];
  let responder: Responder | undefined;
  let requestSeq = 0;
  let responseSeq = 0;

  async function nextTurn(request: RecordedRequest): Promise<ScriptedTurn> {
    const scripted = queue.shift();
    if (scripted) return scripted;
    return responder ? await responder(request) : {};
  }

  async function respond(protocol: WireProtocol, req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const body = parseJson(await readBody(req)) as any;
    const request: RecordedRequest = {
      protocol: protocol.name,
      method: req.method ?? "POST",
      path: pathname,
      headers: { ...req.headers },
      body,
      stream: body?.stream === true,
    };
    requests.push(request);
    const headers: Record<string, string> = { [protocol.requestIdHeader]: `req_stub${++requestSeq}` };

    // Rejections a real provider makes before doing any work; they consume no scripted turn.
    const authError = protocol.authError(req.headers);
    if (authError !== undefined) return sendJson(res, 401, protocol.errorBody(401, authError), headers);
    const invalid = body === undefined ? "We could not parse the JSON body of your request." : protocol.invalid(body);
    if (invalid !== undefined) return sendJson(res, 400, protocol.errorBody(400, invalid), headers);

    const scripted = await nextTurn(request);
    const latencyMs = scripted.latencyMs ?? defaultLatencyMs;
    if (latencyMs > 0) await sleep(latencyMs);
    if (res.destroyed) return;

    const fault = scripted.fault;
    if (fault?.kind === "status") {
      if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
      return sendJson(res, fault.status, fault.body ?? protocol.errorBody(fault.status), headers);
    }

    const turn = resolveTurn(scripted, body, ++responseSeq);
    if (!request.stream) {
      const payload = JSON.stringify(protocol.json(turn));
      if (fault?.kind !== "reset_mid_stream") return sendPayload(res, 200, payload, headers);
      res.writeHead(200, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      return resetAfter(res, payload.slice(0, Math.floor(payload.length / 2)));
    }

    const frames = protocol.events(turn, body);
    res.writeHead(200, { ...headers, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    if (fault?.kind === "reset_mid_stream") return resetAfter(res, frames.slice(0, fault.afterChunks).join(""));
    res.end(frames.join(""));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? "/", "http://stub");
    const protocol = route(req.method, pathname);
    if (protocol) return respond(protocol, req, res, pathname);
    if (req.method === "GET" && pathname === "/health") return sendJson(res, 200, { status: "ok" });
    req.resume();
    sendJson(res, 404, openAICompletions.errorBody(404, `Unknown request URL: ${req.method ?? ""} ${pathname}`));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: `stub provider: ${String(err)}`, type: "server_error" } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script: (...turns) => {
      queue.push(...turns);
    },
    setResponder: (fn) => {
      responder = fn;
    },
    reset: () => {
      queue.length = 0;
      requests.length = 0;
      responder = undefined;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
