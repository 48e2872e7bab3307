import { GENAI_OPERATION, GOVERNANCE_OPERATION, ATTR } from "@clasper/telemetry";
import { RiskLevel, SpanStatusCode, TraceStatus } from "@clasper/proto";
import { attrInt, attrNumber, attrString, type Attributes } from "../query/attributes.js";
import type { NormalizedSpan } from "./normalize.js";

/*
 * Span → trace summary. A batch's NEW spans of one trace are folded into a TraceDelta here; the
 * store merges the delta into the `traces` row with one atomic upsert whose rules are the same as
 * the fold's (store/spans.ts upsertTraceDeltas), so the summary is a function of the SET of
 * spans stored, whatever order and batching they arrived in:
 *   - sums (tokens, cost, counts) add, and only newly inserted spans are folded, so a re-sent
 *     span never counts twice;
 *   - started_at is the least start; blocked is OR-ed;
 *   - every field that comes from one particular span (the execution's invoke_agent span, the
 *     first error, the first governance decision, ...) belongs to a group with a pick key
 *     (start µs, zero-padded, then span id): the smallest key wins, in the fold and in SQL;
 *   - completed_at/duration come from the invoke_agent span once it is there, else from the
 *     latest end seen; status is recomputed from the merged facts.
 */

/** The execution's fields, read from its invoke_agent span. */
export interface RootFields {
  /** µs since 1970 UTC. */
  completedMicros: number;
  durationMs: number;
  executionId: string | null;
  workspaceId: string | null;
  environment: string | null;
  agentRole: string | null;
  userId: string | null;
  workspaceVersionHash: string | null;
  skillVersions: string;
  inputMessage: string | null;
  inputHistoryCount: number | null;
  outputMessage: string | null;
  taskId: string | null;
  documentId: string | null;
  messageId: string | null;
  source: string | null;
}

interface Picked<T> {
  key: string;
  value: T;
}

export interface TraceDelta {
  traceId: string;
  startMicros: number;
  endMicros: number;
  blocked: boolean;
  root: Picked<RootFields> | undefined;
  model: Picked<{ model: string; provider: string | null }> | undefined;
  error: Picked<{ code: string | null; message: string | null }> | undefined;
  governance: Picked<{ riskScore: number | null; riskLevel: number | null }> | undefined;
  decision: Picked<string> | undefined;
  inputTokens: bigint;
  outputTokens: bigint;
  cacheReadTokens: bigint;
  cacheWriteTokens: bigint;
  reasoningTokens: bigint;
  costMicros: bigint;
  llmCallCount: number;
  toolCallCount: number;
  spanCount: number;
  redactionTypes: Set<string>;
}

/** A span after redaction, with the redaction types found in it. */
export interface AssembledSpan {
  span: NormalizedSpan;
  redactionTypes: ReadonlySet<string>;
}

const KEY_TIME_DIGITS = 17;

/** Orders spans by start, then span id; comparing two keys as strings compares the spans. */
export function pickKey(span: NormalizedSpan): string {
  return String(span.startMicros).padStart(KEY_TIME_DIGITS, "0") + span.spanId;
}

function better<T>(current: Picked<T> | undefined, candidate: Picked<T> | undefined): Picked<T> | undefined {
  if (!candidate) return current;
  if (!current) return candidate;
  return candidate.key < current.key ? candidate : current;
}

function nonEmpty(attrs: Attributes, key: string): string | null {
  const value = attrString(attrs, key);
  return value === undefined || value === "" ? null : value;
}

/** A JSON object string of skill name → version, as canonical JSON text; "{}" when malformed. */
export function skillVersionsJson(raw: string | null): string {
  if (raw === null) return "{}";
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return "{}";
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "{}";
  // JSON.parse creates own properties even for "__proto__", and the copy has no prototype.
  const versions: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, version] of Object.entries(parsed)) {
    if (typeof version === "string") versions[name] = version;
  }
  return JSON.stringify(versions);
}

const RISK_LEVELS: Readonly<Record<string, RiskLevel>> = {
  low: RiskLevel.LOW,
  medium: RiskLevel.MEDIUM,
  high: RiskLevel.HIGH,
  critical: RiskLevel.CRITICAL,
};

/** "high" or 3 → RiskLevel.HIGH; anything else → null. */
export function riskLevelOf(attrs: Attributes): number | null {
  const raw = attrs[ATTR.riskLevel];
  if (typeof raw === "number") return raw >= RiskLevel.LOW && raw <= RiskLevel.CRITICAL ? Math.trunc(raw) : null;
  if (typeof raw !== "string") return null;
  return RISK_LEVELS[raw.toLowerCase().replace(/^risk_level_/, "")] ?? null;
}

function durationMs(startMicros: number, endMicros: number): number {
  return Math.floor((endMicros - startMicros) / 1000);
}

function rootFields(span: NormalizedSpan): RootFields {
  const a = span.attributes;
  const history = attrNumber(a, ATTR.inputHistoryCount);
  return {
    completedMicros: span.endMicros,
    durationMs: durationMs(span.startMicros, span.endMicros),
    executionId: nonEmpty(a, ATTR.executionId),
    workspaceId: nonEmpty(a, ATTR.workspaceId),
    environment: nonEmpty(a, ATTR.environment),
    agentRole: nonEmpty(a, ATTR.agentName),
    userId: nonEmpty(a, ATTR.userId),
    workspaceVersionHash: nonEmpty(a, ATTR.workspaceVersion),
    skillVersions: skillVersionsJson(nonEmpty(a, ATTR.skillVersions)),
    inputMessage: nonEmpty(a, ATTR.inputMessage),
    inputHistoryCount: history === undefined ? null : Math.trunc(history),
    outputMessage: nonEmpty(a, ATTR.outputMessage),
    taskId: nonEmpty(a, ATTR.taskId),
    documentId: nonEmpty(a, ATTR.documentId),
    messageId: nonEmpty(a, ATTR.messageId),
    source: nonEmpty(a, ATTR.source),
  };
}

/** The message of the span's first `exception` event, when its status carries none. */
function exceptionMessage(span: NormalizedSpan): string | null {
  for (const event of span.events) {
    if (event.name !== "exception") continue;
    const message = event.attributes["exception.message"];
    if (typeof message === "string" && message !== "") return message;
  }
  return null;
}

function errorOf(span: NormalizedSpan): Picked<{ code: string | null; message: string | null }> | undefined {
  const code = nonEmpty(span.attributes, ATTR.errorType);
  if (span.statusCode !== SpanStatusCode.ERROR && code === null) return undefined;
  return { key: pickKey(span), value: { code, message: span.statusMessage ?? exceptionMessage(span) } };
}

function emptyDelta(traceId: string, span: NormalizedSpan): TraceDelta {
  return {
    traceId,
    startMicros: span.startMicros,
    endMicros: span.endMicros,
    blocked: false,
    root: undefined,
    model: undefined,
    error: undefined,
    governance: undefined,
    decision: undefined,
    inputTokens: 0n,
    outputTokens: 0n,
    cacheReadTokens: 0n,
    cacheWriteTokens: 0n,
    reasoningTokens: 0n,
    costMicros: 0n,
    llmCallCount: 0,
    toolCallCount: 0,
    spanCount: 0,
    redactionTypes: new Set(),
  };
}

/** Folds one span into its trace's delta (the same rules as the SQL merge). */
function fold(delta: TraceDelta, { span, redactionTypes }: AssembledSpan): void {
  const a = span.attributes;
  const key = pickKey(span);
  delta.startMicros = Math.min(delta.startMicros, span.startMicros);
  delta.endMicros = Math.max(delta.endMicros, span.endMicros);
  delta.spanCount += 1;
  for (const type of redactionTypes) delta.redactionTypes.add(type);
  if (a[ATTR.executionStatus] === "blocked") delta.blocked = true;
  delta.error = better(delta.error, errorOf(span));

  const model = nonEmpty(a, ATTR.requestModel);
  switch (span.operation) {
    case GENAI_OPERATION.invokeAgent:
      delta.root = better(delta.root, { key, value: rootFields(span) });
      // The model the execution asked for wins over any single call's ("0" sorts before "1").
      if (model) delta.model = better(delta.model, { key: `0${key}`, value: { model, provider: nonEmpty(a, ATTR.providerName) } });
      break;
    case GENAI_OPERATION.chat:
      delta.llmCallCount += 1;
      // Usage is summed from chat spans only: an invoke_agent span may repeat the total.
      delta.inputTokens += attrInt(a, ATTR.usageInputTokens);
      delta.outputTokens += attrInt(a, ATTR.usageOutputTokens);
      delta.cacheReadTokens += attrInt(a, ATTR.usageCacheReadTokens);
      delta.cacheWriteTokens += attrInt(a, ATTR.usageCacheWriteTokens);
      delta.reasoningTokens += attrInt(a, ATTR.usageReasoningTokens);
      delta.costMicros += attrInt(a, ATTR.costMicros);
      if (model) delta.model = better(delta.model, { key: `1${key}`, value: { model, provider: nonEmpty(a, ATTR.providerName) } });
      break;
    case GENAI_OPERATION.executeTool:
      delta.toolCallCount += 1;
      break;
    case GOVERNANCE_OPERATION: {
      const score = attrNumber(a, ATTR.riskScore);
      const riskScore = score === undefined ? null : Math.min(100, Math.max(0, Math.trunc(score)));
      delta.governance = better(delta.governance, { key, value: { riskScore, riskLevel: riskLevelOf(a) } });
      const decisionId = nonEmpty(a, ATTR.decisionId);
      if (decisionId) delta.decision = better(delta.decision, { key, value: decisionId });
      break;
    }
  }
}

/** One delta per trace of the given (newly stored) spans, ordered by trace id (the lock order). */
export function assembleTraceDeltas(spans: readonly AssembledSpan[]): TraceDelta[] {
  const byTrace = new Map<string, TraceDelta>();
  for (const item of spans) {
    let delta = byTrace.get(item.span.traceId);
    if (!delta) {
      delta = emptyDelta(item.span.traceId, item.span);
      byTrace.set(item.span.traceId, delta);
    }
    fold(delta, item);
  }
  return [...byTrace.values()].sort((x, y) => (x.traceId < y.traceId ? -1 : x.traceId > y.traceId ? 1 : 0));
}

/** Status of a trace from its merged facts; the SQL merge computes the same. */
export function traceStatus(delta: Pick<TraceDelta, "root" | "blocked" | "error">): TraceStatus {
  if (!delta.root) return TraceStatus.RUNNING;
  if (delta.blocked) return TraceStatus.BLOCKED;
  if (delta.error) return TraceStatus.ERROR;
  return TraceStatus.SUCCESS;
}

/**
 * completed_at and duration of a delta alone: the invoke_agent span's end and duration, else the
 * latest end seen and the time from the first start to it. The SQL merge applies the same rule
 * across batches.
 */
export function completion(delta: TraceDelta): { completedMicros: number; durationMs: number } {
  if (delta.root) return { completedMicros: delta.root.value.completedMicros, durationMs: delta.root.value.durationMs };
  return { completedMicros: delta.endMicros, durationMs: durationMs(delta.startMicros, delta.endMicros) };
}
