/** The wire protocols the stub speaks; the names are pi-ai's `Api` values for them. */
export type StubProtocol = "openai-completions" | "openai-responses" | "anthropic-messages";

export interface ScriptedToolCall {
  /** Provider-side call id; generated (`call_…`, `toolu_…`) when omitted. */
  id?: string;
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * Token counts in pi-ai's terms, so a test reads back the same figures from pi-ai's `Usage`:
 * `input` excludes cached tokens, `output` includes `reasoning`.
 */
export interface ScriptedUsage {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
}

export type ScriptedFault =
  /** Answer with this HTTP status and the provider's JSON error body (or `body`). */
  | { kind: "status"; status: number; retryAfterSeconds?: number; body?: unknown }
  /** Send the headers and the first `afterChunks` SSE events (non-streaming: half the body), then reset the TCP connection. */
  | { kind: "reset_mid_stream"; afterChunks: number };

export interface ScriptedTurn {
  text?: string;
  toolCalls?: ScriptedToolCall[];
  usage?: ScriptedUsage;
  /**
   * "stop" | "length" | "tool_use" | "content_filter" are mapped to each protocol's own value;
   * anything else is sent verbatim. Default: "tool_use" when there are tool calls, else "stop".
   */
  finishReason?: string;
  /** Delay before the first byte of the response; overrides the server's `defaultLatencyMs`. */
  latencyMs?: number;
  fault?: ScriptedFault;
}

export interface RecordedRequest {
  protocol: StubProtocol;
  method: string;
  /** The request path as sent, e.g. `/v1/chat/completions`. */
  path: string;
  /** Header names are lower-case (Node's `IncomingMessage.headers`). */
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body; `undefined` when it was not valid JSON. */
  body: any;
  /** Whether the client asked for SSE (`"stream": true`). */
  stream: boolean;
}

export type Responder = (req: RecordedRequest) => ScriptedTurn | Promise<ScriptedTurn>;

export interface StubProvider {
  /** `http://127.0.0.1:<port>`; OpenAI clients use `${url}/v1`, Anthropic clients `url`. */
  readonly url: string;
  /** Every request that reached a protocol endpoint, in arrival order (the live array). */
  readonly requests: RecordedRequest[];
  /** Queues turns; each request consumes one. When the queue is empty the responder answers, else a default text reply. */
  script(...turns: ScriptedTurn[]): void;
  setResponder(fn: Responder): void;
  /** Clears the queue, the responder and the recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

export interface StubProviderOptions {
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** Delay before each response unless the turn sets `latencyMs`. Default 0. */
  defaultLatencyMs?: number;
}
