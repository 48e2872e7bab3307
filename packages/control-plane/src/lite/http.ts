import type { IncomingMessage, ServerResponse } from "node:http";

/** An expected failure, answered with the contract's error body `{error, code}`. */
export class LiteHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const MAX_BODY_BYTES = 1024 * 1024;

/** The request body as a JSON object; 400 for anything else, 413 past MAX_BODY_BYTES. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new LiteHttpError(400, "invalid_json", "request body must be a JSON object");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LiteHttpError(400, "invalid_json", "request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new LiteHttpError(400, "invalid_json", "request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function tooLarge(): LiteHttpError {
  return new LiteHttpError(413, "payload_too_large", `request body exceeds ${MAX_BODY_BYTES} bytes`);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function errorBody(err: LiteHttpError): Record<string, unknown> {
  return { error: err.message, code: err.code, ...(err.details ? { details: err.details } : {}) };
}
