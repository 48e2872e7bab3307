import type http from "node:http";
import type { JsonValue } from "@bufbuild/protobuf";

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads and parses a JSON request body, stopping as soon as it passes the limit so an oversize
 * upload cannot exhaust memory. An empty body is `undefined`.
 */
export async function readJsonBody(req: http.IncomingMessage, limitBytes: number): Promise<JsonValue | undefined> {
  const declared = Number(req.headers["content-length"] ?? "NaN");
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume();
    throw new BodyError(413, "payload_too_large", `request body exceeds ${limitBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limitBytes) {
      req.resume();
      throw new BodyError(413, "payload_too_large", `request body exceeds ${limitBytes} bytes`);
    }
    chunks.push(buf);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new BodyError(400, "malformed_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
}
