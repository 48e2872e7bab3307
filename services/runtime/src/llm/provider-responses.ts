import { AsyncLocalStorage } from "node:async_hooks";

/** What the HTTP layer saw of one provider request that pi-ai does not pass on. */
export interface ProviderExchange {
  /** HTTP status of the response; undefined when no response arrived (network error). */
  status?: number;
  /** Retry-After of an error response, milliseconds. */
  retryAfterMs?: number;
  /** Reasoning tokens the provider reported in the body (OpenAI `reasoning_tokens`), as read so far. */
  reasoningTokens?: number;
}

/** The request in flight: what is recorded, and whether its body is scanned for reasoning tokens. */
interface Observation {
  exchange: ProviderExchange;
  scanReasoning: boolean;
}

const current = new AsyncLocalStorage<Observation>();

/**
 * pi-ai APIs whose bodies never carry `reasoning_tokens` (OpenAI's field name): Anthropic counts
 * thinking inside `output_tokens`, Google reports `thoughtsTokenCount`, Bedrock its own usage.
 * Their bodies are not scanned; every other API (OpenAI's, and ones this list does not know) is.
 */
const NO_REASONING_FIELD: ReadonlySet<string> = new Set(["anthropic-messages", "google-generative-ai", "google-vertex", "bedrock-converse-stream"]);

export function reportsReasoningTokens(api: string): boolean {
  return !NO_REASONING_FIELD.has(api);
}
let installed = false;

/** Retry-After: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const REASONING = /"reasoning_tokens"\s*:\s*(\d+)/g;

/**
 * The response with its body passed through a scan for the last reported reasoning-token count.
 * The scan sees each chunk as the SDK reads it, so the count is final once the SDK has read the
 * body, and nothing is buffered or read twice (a `clone()` would tee the stream, copying every
 * chunk into a second branch that a second reader then drains). The status and headers are the
 * provider's; `url` is carried over for SDKs that log it.
 */
function scanningReasoning(response: Response, exchange: ProviderExchange): Response {
  if (!response.body) return response;
  const decoder = new TextDecoder();
  let tail = "";
  const scan = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      const text = tail + decoder.decode(chunk, { stream: true });
      for (const match of text.matchAll(REASONING)) exchange.reasoningTokens = Number(match[1]);
      // Keep enough of the end for a match split across chunks.
      tail = text.slice(-64);
    },
  });
  const scanned = new Response(response.body.pipeThrough(scan), { status: response.status, statusText: response.statusText, headers: response.headers });
  Object.defineProperty(scanned, "url", { value: response.url });
  return scanned;
}

/**
 * pi-ai turns a provider's HTTP error into a message string: the status code survives, the
 * Retry-After header and the reasoning-token count in the body do not. The provider SDKs it uses
 * call `globalThis.fetch`, so a pass-through wrapper that only records what it sees, for calls
 * made inside `observeProviderExchange`, is the one place those facts are visible. Requests
 * outside such a scope are untouched.
 */
function install(): void {
  if (installed) return;
  installed = true;
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const observation = current.getStore();
    const response = await original(input, init);
    if (!observation) return response;
    const { exchange } = observation;
    exchange.status = response.status;
    if (!response.ok) {
      exchange.retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
      return response;
    }
    return observation.scanReasoning ? scanningReasoning(response, exchange) : response;
  };
}

/** Runs one provider request over `api` and returns what the HTTP layer saw of it. */
export async function observeProviderExchange<T>(api: string, fn: () => Promise<T>): Promise<{ result: T; exchange: ProviderExchange }> {
  install();
  const exchange: ProviderExchange = {};
  const result = await current.run({ exchange, scanReasoning: reportsReasoningTokens(api) }, fn);
  return { result, exchange };
}
