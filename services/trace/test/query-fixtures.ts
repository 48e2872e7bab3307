/**
 * Test support for the trace query suites (query, diff, annotations, retention): a fresh database,
 * fixture executions written straight into `spans` and `traces` (independent of span ingest), and
 * Connect clients for any tenant and role over an in-memory transport that runs the real server
 * stack (auth → protovalidate) in front of the service's real routes.
 */
import { randomBytes } from "node:crypto";
import { createClient, createRouterTransport, type Client, type Interceptor } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import pino from "pino";
import { buildPrincipal, CONTEXT_HEADER, createContextSigner, createContextVerifier, serverAuthInterceptor } from "@clasper/auth";
import type { Database } from "@clasper/db";
import { TraceService } from "@clasper/proto";
import { createPeerClients, lateBoundTransport, validationInterceptor } from "@clasper/service-kit";
import { ATTR, GENAI_OPERATION, GOVERNANCE_OPERATION } from "@clasper/telemetry";
import { build, TRACE_SCHEMA } from "../src/server.js";
import type { AttributeMap } from "../src/ingest/normalize.js";
import type { TraceDatabase } from "../src/store/schema.js";
import { encodeSpanPayload } from "../src/store/span-payload.js";

const SECRET = "trace-query-test-secret-0123456789abcdefghij";
const signer = createContextSigner(SECRET);
const verifier = createContextVerifier(SECRET);

export type TraceClient = Client<typeof TraceService>;

export interface Caller {
  tenantId: string;
  roles?: string[];
  userId?: string;
  workspaceId?: string;
}

/** A client calling the trace service as `caller` (admin unless roles say otherwise). */
export function traceClient(database: Database, caller: Caller): TraceClient {
  const routes = build({
    db: database,
    peers: createPeerClients(() =>
      lateBoundTransport(() => {
        throw new Error("the trace query tests call no peer");
      }),
    ),
    logger: pino({ level: "silent" }),
    env: {},
  });
  const principal = buildPrincipal({ kind: "user", tenantId: caller.tenantId, userId: caller.userId ?? "user-1", workspaceId: caller.workspaceId, roles: caller.roles ?? ["admin"] });
  const withContext: Interceptor = (next) => async (req) => {
    req.header.set(CONTEXT_HEADER, await signer.sign({ principal, requestId: "test" }));
    return next(req);
  };
  const transport = createRouterTransport(routes, {
    router: { interceptors: [serverAuthInterceptor({ verifier }), validationInterceptor()] },
    transport: { interceptors: [withContext] },
  });
  return createClient(TraceService, transport);
}

export function traceDb(database: Database): Kysely<TraceDatabase> {
  return database.forSchema<TraceDatabase>(TRACE_SCHEMA);
}

export const hex = (bytes: number) => randomBytes(bytes).toString("hex");

export interface LlmCallFixture {
  model?: string;
  provider?: string;
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
  costMicros?: number;
  text?: string;
  toolCalls?: { id: string; name: string; arguments: unknown }[];
  finishReason?: string;
  temperature?: number;
  maxTokens?: number;
  /** Full gen_ai.input.messages of this call (the first call's are the request). */
  inputMessages?: unknown[];
  systemPrompt?: string;
}

export interface ToolFixture {
  id: string;
  name: string;
  arguments?: unknown;
  result?: unknown;
  success?: boolean;
  permitted?: boolean;
}

export interface ExecutionFixture {
  tenantId: string;
  traceId?: string;
  startedAt?: Date;
  durationMs?: number;
  /** TraceStatus number (2 success by default). */
  status?: number;
  workspaceId?: string;
  environment?: string;
  agentRole?: string;
  userId?: string;
  source?: string;
  labels?: Record<string, string>;
  skillVersions?: Record<string, string>;
  workspaceVersionHash?: string;
  taskId?: string;
  documentId?: string;
  messageId?: string;
  riskLevel?: number;
  riskScore?: number;
  errorCode?: string;
  errorMessage?: string;
  redactionTypes?: string[];
  input?: string;
  historyCount?: number;
  output?: string;
  sessionKey?: string;
  llmCalls?: LlmCallFixture[];
  tools?: ToolFixture[];
  governance?: { effect: string; riskLevel: string; riskScore: number; reasons?: string[] };
  /** Write the spans (default true); false leaves a summary-only trace. */
  withSpans?: boolean;
}

const STEP_MS = 10;

/** A span's stored payload: these attributes, no events. */
function payload(attributes: Record<string, unknown>): Buffer {
  return encodeSpanPayload({ attributes: attributes as AttributeMap, events: [] });
}

/**
 * Writes one execution: its spans (invoke_agent root; a governance decision; chat and
 * execute_tool spans interleaved, STEP_MS apart; attributes in the payload) and the trace row summed
 * from them, the way ingest would. Returns the trace id.
 */
export async function seedExecution(db: Kysely<TraceDatabase>, f: ExecutionFixture): Promise<string> {
  const traceId = f.traceId ?? hex(16);
  const startedAt = f.startedAt ?? new Date();
  const calls = f.llmCalls ?? [{}];
  const tools = f.tools ?? [];
  const status = f.status ?? 2;
  const rootId = hex(8);
  const spans: Record<string, unknown>[] = [];
  let t = startedAt.getTime();
  const span = (operation: string, name: string, attributes: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const start = new Date((t += STEP_MS));
    spans.push({
      tenant_id: f.tenantId,
      trace_id: traceId,
      span_id: hex(8),
      parent_span_id: rootId,
      name,
      kind: 1,
      operation,
      start_time: start,
      end_time: new Date(start.getTime() + STEP_MS - 1),
      status_code: 1,
      status_message: null,
      payload: payload({ [ATTR.operationName]: operation, ...attributes }),
      service_name: "clasper-runtime",
      ...extra,
    });
  };
  if (f.governance) {
    span(GOVERNANCE_OPERATION, "governance", {
      [ATTR.decisionEffect]: f.governance.effect,
      [ATTR.riskLevel]: f.governance.riskLevel,
      [ATTR.riskScore]: f.governance.riskScore,
      [ATTR.decisionReasons]: f.governance.reasons ?? [],
    });
  }
  calls.forEach((c, i) => {
    const model = c.model ?? "gpt-4o-mini";
    span(GENAI_OPERATION.chat, `chat ${model}`, {
      [ATTR.providerName]: c.provider ?? "openai",
      [ATTR.requestModel]: model,
      [ATTR.responseModel]: model,
      [ATTR.usageInputTokens]: c.input ?? 100,
      [ATTR.usageOutputTokens]: c.output ?? 20,
      [ATTR.usageCacheReadTokens]: c.cacheRead ?? 0,
      [ATTR.usageCacheWriteTokens]: c.cacheWrite ?? 0,
      [ATTR.usageReasoningTokens]: c.reasoning ?? 0,
      [ATTR.costMicros]: c.costMicros ?? 1000,
      [ATTR.responseFinishReasons]: [c.finishReason ?? (c.toolCalls?.length ? "tool_calls" : "stop")],
      ...(c.temperature !== undefined ? { [ATTR.requestTemperature]: c.temperature } : {}),
      ...(c.maxTokens !== undefined ? { [ATTR.requestMaxTokens]: c.maxTokens } : {}),
      ...(c.systemPrompt !== undefined ? { [ATTR.systemInstructions]: c.systemPrompt } : {}),
      ...(c.inputMessages ? { [ATTR.inputMessages]: JSON.stringify(c.inputMessages) } : {}),
      [ATTR.outputMessages]: JSON.stringify([
        {
          role: "assistant",
          parts: [
            ...(c.text !== undefined ? [{ type: "text", content: c.text }] : []),
            ...(c.toolCalls ?? []).map((tc) => ({ type: "tool_call", id: tc.id, name: tc.name, arguments: tc.arguments })),
          ],
          finish_reason: c.finishReason ?? (c.toolCalls?.length ? "tool_calls" : "stop"),
        },
      ]),
    });
    const tool = tools[i];
    if (tool) {
      const failed = tool.success === false || tool.permitted === false;
      span(
        GENAI_OPERATION.executeTool,
        `execute_tool ${tool.name}`,
        {
          [ATTR.toolName]: tool.name,
          [ATTR.toolCallId]: tool.id,
          [ATTR.toolPermitted]: tool.permitted ?? true,
          ...(tool.arguments !== undefined ? { [ATTR.toolCallArguments]: JSON.stringify(tool.arguments) } : {}),
          ...(tool.result !== undefined ? { [ATTR.toolCallResult]: JSON.stringify(tool.result) } : {}),
        },
        failed ? { status_code: 2, status_message: "tool failed" } : {},
      );
    }
  });
  const durationMs = f.durationMs ?? t + STEP_MS - startedAt.getTime();
  const completedAt = new Date(startedAt.getTime() + durationMs);
  spans.unshift({
    tenant_id: f.tenantId,
    trace_id: traceId,
    span_id: rootId,
    parent_span_id: null,
    name: "invoke_agent",
    kind: 1,
    operation: GENAI_OPERATION.invokeAgent,
    start_time: startedAt,
    end_time: completedAt,
    status_code: status === 3 ? 2 : 1,
    status_message: status === 3 ? (f.errorMessage ?? "failed") : null,
    payload: payload({
      [ATTR.operationName]: GENAI_OPERATION.invokeAgent,
      ...(f.input !== undefined ? { [ATTR.inputMessage]: f.input } : {}),
      ...(f.historyCount !== undefined ? { [ATTR.inputHistoryCount]: f.historyCount } : {}),
      ...(f.output !== undefined ? { [ATTR.outputMessage]: f.output } : {}),
      ...(f.sessionKey !== undefined ? { [ATTR.conversationId]: f.sessionKey } : {}),
      ...(status === 3 ? { [ATTR.errorType]: f.errorCode ?? "error" } : {}),
    }),
    service_name: "clasper-runtime",
  });
  const sum = (pick: (c: LlmCallFixture) => number | undefined, dflt: number) => calls.reduce((n, c) => n + (pick(c) ?? dflt), 0);
  if (f.withSpans !== false) await db.insertInto("spans").values(spans as never).execute();
  await db
    .insertInto("traces")
    .values({
      tenant_id: f.tenantId,
      trace_id: traceId,
      started_at: startedAt,
      completed_at: status === 1 ? null : completedAt,
      duration_ms: durationMs,
      status,
      execution_id: `exec-${traceId.slice(0, 8)}`,
      workspace_id: f.workspaceId ?? "ws-1",
      environment: f.environment ?? null,
      agent_role: f.agentRole ?? "assistant",
      user_id: f.userId ?? "user-1",
      model: calls[0]?.model ?? "gpt-4o-mini",
      provider: calls[0]?.provider ?? "openai",
      workspace_version_hash: f.workspaceVersionHash ?? "abcdef0123456789",
      skill_versions: JSON.stringify(f.skillVersions ?? {}),
      input_tokens: sum((c) => c.input, 100),
      output_tokens: sum((c) => c.output, 20),
      cache_read_tokens: sum((c) => c.cacheRead, 0),
      cache_write_tokens: sum((c) => c.cacheWrite, 0),
      reasoning_tokens: sum((c) => c.reasoning, 0),
      cost_micros: sum((c) => c.costMicros, 1000),
      llm_call_count: calls.length,
      tool_call_count: tools.length,
      span_count: spans.length,
      error_code: f.errorCode ?? null,
      error_message: f.errorMessage ?? null,
      labels: JSON.stringify(f.labels ?? {}),
      task_id: f.taskId ?? null,
      document_id: f.documentId ?? null,
      message_id: f.messageId ?? null,
      risk_score: f.riskScore ?? null,
      risk_level: f.riskLevel ?? null,
      decision_id: null,
      redaction_types: f.redactionTypes ?? [],
      source: f.source ?? "send",
      input_message: f.input ?? null,
      input_history_count: f.historyCount ?? null,
      output_message: f.output ?? null,
    })
    .execute();
  return traceId;
}

/** `days` days and `ms` milliseconds before now. */
export function ago(days: number, ms = 0): Date {
  return new Date(Date.now() - days * 86_400_000 - ms);
}
