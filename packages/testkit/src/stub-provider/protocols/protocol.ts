import type { IncomingHttpHeaders } from "node:http";
import type { ResolvedTurn } from "../turn.js";
import type { StubProtocol } from "../types.js";

/** One provider wire protocol: how to check a request and how to render a turn or an error. */
export interface WireProtocol {
  readonly name: StubProtocol;
  /** The endpoint, as clients configured with the provider's documented base URL call it. */
  readonly path: string;
  /** Header that carries the provider's request id on every response. */
  readonly requestIdHeader: string;
  /** Why the provider would answer 401, or undefined when the credentials are present. */
  authError(headers: IncomingHttpHeaders): string | undefined;
  /** Why the provider would answer 400, or undefined when the body is well-formed enough. */
  invalid(body: any): string | undefined;
  /** The non-streaming response body. */
  json(turn: ResolvedTurn): unknown;
  /** The SSE frames of the streaming response, each complete with its blank line. */
  events(turn: ResolvedTurn, body: any): string[];
  /** The provider's JSON error body for an HTTP status. */
  errorBody(status: number, message?: string): unknown;
}

/** One server-sent event; `event:` is omitted for protocols that send bare `data:` lines. */
export function sse(data: unknown, event?: string): string {
  const payload = typeof data === "string" ? data : JSON.stringify(data);
  return event === undefined ? `data: ${payload}\n\n` : `event: ${event}\ndata: ${payload}\n\n`;
}

export function bearer(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization;
  if (typeof value !== "string" || !value.startsWith("Bearer ")) return undefined;
  const token = value.slice("Bearer ".length).trim();
  return token.length > 0 ? token : undefined;
}

/** Default error texts, close to what the providers say. */
export function defaultErrorMessage(status: number): string {
  if (status === 429) return "Rate limit reached (stub provider). Please try again later.";
  if (status === 529 || status === 503) return "The server is overloaded (stub provider).";
  if (status >= 500) return "The server had an error while processing your request (stub provider).";
  return `Request failed with status ${status} (stub provider).`;
}
