import { AsyncLocalStorage } from "node:async_hooks";

/** What the HTTP layer saw of one provider request that pi-ai does not pass on. */
export interface ProviderExchange {
  /** HTTP status of the response; undefined when no response arrived (network error). */
  status?: number;
  /** Retry-After of an error response, milliseconds. */
  retryAfterMs?: number;
  /** Reasoning tokens the provider reported in the body (OpenAI `reasoning_tokens`). */
  reasoningTokens?: number;
  /** Resolves when the body has been scanned (reasoning tokens are read from a tee). */
  scanned?: Promise<void>;
}

const current = new AsyncLocalStorage<ProviderExchange>();
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

/** Reads a tee of a streamed body for the last reported reasoning-token count. */
async function scanReasoning(response: Response, exchange: ProviderExchange): Promise<void> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let tail = "";
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      const text = tail + decoder.decode(chunk, { stream: true });
      for (const match of text.matchAll(REASONING)) exchange.reasoningTokens = Number(match[1]);
      // Keep enough of the end for a match split across chunks.
      tail = text.slice(-64);
    }
  } catch {
    // The request was aborted or reset; pi-ai reports that on its side.
  }
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
    const exchange = current.getStore();
    const response = await original(input, init);
    if (!exchange) return response;
    exchange.status = response.status;
    if (!response.ok) {
      exchange.retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
      return response;
    }
    exchange.scanned = scanReasoning(response.clone(), exchange);
    return response;
  };
}

/** Runs one provider request and returns what the HTTP layer saw of it. */
export async function observeProviderExchange<T>(fn: () => Promise<T>): Promise<{ result: T; exchange: ProviderExchange }> {
  install();
  const exchange: ProviderExchange = {};
  const result = await current.run(exchange, fn);
  return { result, exchange };
}
