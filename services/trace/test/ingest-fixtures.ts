/**
 * Shared by the ingest tests: realistic spans of one execution, and the trace service served
 * through an in-memory Connect transport with the real server interceptor stack (tracing,
 * logging, metrics, auth, store errors, validation), as `clasper serve` wires it.
 */
import { randomBytes } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient, createRouterTransport, type Client, type ConnectRouter } from "@connectrpc/connect";
import pino from "pino";
import { buildPrincipal, CONTEXT_HEADER, createContextSigner, createContextVerifier } from "@clasper/auth";
import type { Database } from "@clasper/db";
import { SpanKind, SpanStatusCode, TraceService, type SpanSchema } from "@clasper/proto";
import { createHealthRegistry, createPeerClients, inMemoryTransport, serverInterceptors } from "@clasper/service-kit";
import { ATTR, createMetrics, GENAI_OPERATION, GOVERNANCE_OPERATION, startTelemetry } from "@clasper/telemetry";
import { build } from "../src/server.js";

export type SpanInit = MessageInitShape<typeof SpanSchema>;
type AttrInput = string | number | boolean | string[];

const SECRET = "ingest-test-internal-secret-0123456789abcdef";

function attributeValue(value: AttrInput): NonNullable<NonNullable<SpanInit["attributes"]>[number]["value"]> {
  if (Array.isArray(value)) return { value: { case: "arrayValue", value: { values: value.map((v) => ({ value: { case: "stringValue", value: v } })) } } };
  if (typeof value === "string") return { value: { case: "stringValue", value } };
  if (typeof value === "boolean") return { value: { case: "boolValue", value } };
  return Number.isInteger(value) ? { value: { case: "intValue", value: BigInt(value) } } : { value: { case: "doubleValue", value } };
}

export function attributes(attrs: Record<string, AttrInput>): NonNullable<SpanInit["attributes"]> {
  return Object.entries(attrs).map(([key, value]) => ({ key, value: attributeValue(value) }));
}

export const hex = (bytes: number): string => randomBytes(bytes).toString("hex");

const BASE_SECONDS = 1_790_000_000n;

/** A timestamp `ms` milliseconds after a fixed base. */
export function at(ms: number): { seconds: bigint; nanos: number } {
  return { seconds: BASE_SECONDS + BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

export function span(init: {
  traceId: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  operation: string;
  startMs: number;
  endMs: number;
  attrs?: Record<string, AttrInput>;
  error?: string;
  events?: SpanInit["events"];
}): SpanInit {
  return {
    traceId: init.traceId,
    spanId: init.spanId ?? hex(8),
    parentSpanId: init.parentSpanId ?? "",
    name: init.name ?? init.operation,
    kind: SpanKind.INTERNAL,
    startTime: at(init.startMs),
    endTime: at(init.endMs),
    status: init.error === undefined ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: init.error },
    attributes: attributes({ [ATTR.operationName]: init.operation, ...init.attrs }),
    events: init.events ?? [],
    serviceName: "clasper-runtime",
  };
}

export interface ExecutionOptions {
  traceId?: string;
  /** Text placed in the user message, the completion and tool payloads. */
  content?: string;
  /** Ends the last tool call and the execution in error with this message. */
  error?: string;
  attrs?: Record<string, AttrInput>;
}

/**
 * One execution as the runtime records it: invoke_agent, a governance decision, 3 chat calls and
 * 4 tool calls, with usage, cost and payloads.
 */
export function execution(options: ExecutionOptions = {}): SpanInit[] {
  const traceId = options.traceId ?? hex(16);
  const content = options.content ?? "Summarise the open tasks";
  const root = hex(8);
  const spans: SpanInit[] = [
    span({
      traceId,
      spanId: root,
      name: "invoke_agent support",
      operation: GENAI_OPERATION.invokeAgent,
      startMs: 0,
      endMs: 4000,
      ...(options.error === undefined ? {} : { error: options.error }),
      attrs: {
        [ATTR.providerName]: "openai",
        [ATTR.requestModel]: "gpt-4o-mini",
        [ATTR.agentName]: "support",
        [ATTR.executionId]: `exec-${traceId.slice(0, 8)}`,
        [ATTR.workspaceId]: "ws-1",
        [ATTR.environment]: "prod",
        [ATTR.userId]: "user-7",
        [ATTR.workspaceVersion]: "sha256:abc",
        [ATTR.skillVersions]: JSON.stringify({ triage: "1.2.0", search: "0.3.1" }),
        [ATTR.inputMessage]: `${content} please`,
        [ATTR.inputHistoryCount]: 4,
        [ATTR.outputMessage]: `Done: ${content}`,
        [ATTR.taskId]: "task-9",
        [ATTR.messageId]: "msg-3",
        [ATTR.source]: "send",
        // Totals on the execution span must not be added to the chat spans' usage.
        [ATTR.usageInputTokens]: 999_999,
        ...(options.error === undefined ? {} : { [ATTR.errorType]: "tool_failed" }),
        ...options.attrs,
      },
    }),
    span({
      traceId,
      parentSpanId: root,
      name: "clasper.governance_decision preflight",
      operation: GOVERNANCE_OPERATION,
      startMs: 10,
      endMs: 40,
      attrs: { [ATTR.decisionEffect]: "allow", [ATTR.riskScore]: 62, [ATTR.riskLevel]: "high", [ATTR.decisionId]: "dec-1" },
    }),
  ];
  for (let i = 0; i < 3; i++) {
    spans.push(
      span({
        traceId,
        parentSpanId: root,
        name: "chat gpt-4o-mini",
        operation: GENAI_OPERATION.chat,
        startMs: 100 + i * 1000,
        endMs: 600 + i * 1000,
        attrs: {
          [ATTR.providerName]: "openai",
          [ATTR.requestModel]: "gpt-4o-mini",
          [ATTR.usageInputTokens]: 1000 + i,
          [ATTR.usageOutputTokens]: 200 + i,
          [ATTR.usageCacheReadTokens]: 100,
          [ATTR.usageCacheWriteTokens]: 10,
          [ATTR.usageReasoningTokens]: 5,
          [ATTR.costMicros]: 1500 + i,
          [ATTR.inputMessages]: JSON.stringify([{ role: "user", parts: [{ type: "text", content }] }]),
          [ATTR.outputMessages]: JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: `Answer about ${content}` }] }]),
        },
      }),
    );
  }
  for (let i = 0; i < 4; i++) {
    const failing = options.error !== undefined && i === 3;
    spans.push(
      span({
        traceId,
        parentSpanId: root,
        name: "execute_tool search",
        operation: GENAI_OPERATION.executeTool,
        startMs: 700 + i * 700,
        endMs: 900 + i * 700,
        ...(failing ? { error: options.error } : {}),
        attrs: {
          [ATTR.toolName]: "search",
          [ATTR.toolCallId]: `call-${i}`,
          [ATTR.toolCallArguments]: JSON.stringify({ query: content }),
          [ATTR.toolCallResult]: JSON.stringify({ hits: [content] }),
          ...(failing ? { [ATTR.errorType]: "tool_failed" } : {}),
        },
        ...(failing ? { events: [{ name: "exception", time: at(900 + i * 700), attributes: attributes({ "exception.message": options.error ?? "" }) }] } : {}),
      }),
    );
  }
  return spans;
}

/** Pseudo-random numbers in [0, 1) from a seed (xorshift), so a failure can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

/** Random permutation (Fisher–Yates) with a seeded generator, so a failure can be replayed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const random = seededRandom(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Splits items into consecutive batches of random sizes (at least one item each). */
export function batches<T>(items: readonly T[], seed: number): T[][] {
  const out: T[][] = [];
  let i = 0;
  let n = seed;
  while (i < items.length) {
    n = (n * 1103515245 + 12345) % 2147483648;
    const size = 1 + (n % 4);
    out.push(items.slice(i, i + size));
    i += size;
  }
  return out;
}

export interface TraceHarness {
  client: Client<typeof TraceService>;
  /** Call options carrying a signed context for the tenant, as the gateway or a peer would send. */
  as(tenantId: string): Promise<{ headers: Record<string, string> }>;
}

/**
 * The trace service built by the real `build()` and served through createRouterTransport with
 * the real server interceptors. `governance` answers GetRedactionRules; by default it implements
 * nothing, so the call answers Unimplemented, as today.
 */
export function traceHarness(database: Database, governance: (router: ConnectRouter) => void = () => {}): TraceHarness {
  const logger = pino({ level: process.env["INGEST_TEST_LOG"] ?? "silent" });
  const signer = createContextSigner(SECRET);
  const governanceTransport = createRouterTransport(governance);
  const peers = createPeerClients(() => governanceTransport);
  const routes = build({ db: database, peers, logger, env: {} });
  const transport = inMemoryTransport({
    routes,
    health: createHealthRegistry(["trace"], async () => {}),
    serverInterceptors: serverInterceptors({
      telemetry: startTelemetry({ serviceName: "trace-test", env: { OTEL_SDK_DISABLED: "true" } }),
      logger,
      metrics: createMetrics({ serviceName: "trace-test" }),
      contextVerifier: createContextVerifier(SECRET),
      contextSigner: signer,
    }),
    clientInterceptors: [],
  });
  return {
    client: createClient(TraceService, transport),
    as: async (tenantId) => ({
      headers: {
        [CONTEXT_HEADER]: await signer.sign({
          principal: buildPrincipal({ kind: "service", tenantId, userId: "service:runtime", roles: ["admin"] }),
          requestId: `ingest-${tenantId}`,
        }),
      },
    }),
  };
}
