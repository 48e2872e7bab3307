import { create } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { hasPermission, principalOf, workspaceScope } from "@clasper/auth";
import { invalidField, notFound } from "@clasper/core";
import {
  DiffTracesResponseSchema,
  EntityType,
  GetTraceResponseSchema,
  GetTraceStatsResponseSchema,
  LabelTraceResponseSchema,
  ListTracesByEntityResponseSchema,
  ListTracesByLabelResponseSchema,
  ListTracesResponseSchema,
  TraceStatsSchema,
  TraceStatus,
  TrustStatus,
  type DiffTracesRequest,
  type DiffTracesResponse,
  type GetReplayContextRequest,
  type GetReplayContextResponse,
  type GetTraceRequest,
  type GetTraceResponse,
  type GetTraceStatsRequest,
  type GetTraceStatsResponse,
  type LabelTraceRequest,
  type LabelTraceResponse,
  type ListTracesByEntityRequest,
  type ListTracesByEntityResponse,
  type ListTracesByLabelRequest,
  type ListTracesByLabelResponse,
  type ListTracesRequest,
  type ListTracesResponse,
  type Trace,
  type TraceSummary,
} from "@clasper/proto";
import { decodeCursor, encodeCursor } from "../query/cursor.js";
import { diffTraces, formatDiffSummary } from "../query/diff.js";
import { replayContext } from "../query/replay.js";
import { tokenUsage } from "../query/steps.js";
import { STORED_TRUST_STATUS, traceSummary, traceView, withholdPayloads } from "../query/view.js";
import type { TraceDatabase } from "../store/schema.js";
import { listTraceSpans } from "../store/steps.js";
import { countTraces, findTrace, listTraces, replaceLabels, traceStats, type TraceFilter, type TracePageRow, type TraceRow, type TraceScope } from "../store/traces.js";

const DEFAULT_LIST_LIMIT = 50;
const DEFAULT_LOOKUP_LIMIT = 100;

/**
 * The traces the caller may see: its tenant, narrowed to its workspace when the token names
 * one. A requested workspace_id must be that workspace (spec §5.2 canAccessWorkspace).
 */
export function scopeOf(ctx: HandlerContext, requestedWorkspace = ""): TraceScope {
  const principal = principalOf(ctx);
  // The requested workspace is a filter the caller applies; here it only has to be reachable.
  workspaceScope(principal, requestedWorkspace);
  return { tenantId: principal.tenantId, workspaceId: principal.workspaceId };
}

const dateOf = (ts: Timestamp | undefined) => (ts ? timestampDate(ts) : undefined);

function timeWindow(start: Timestamp | undefined, end: Timestamp | undefined): Pick<TraceFilter, "startTime" | "endTime"> {
  const startTime = dateOf(start);
  const endTime = dateOf(end);
  if (startTime && endTime && startTime >= endTime) throw invalidField("end_time", "must be after start_time");
  return { ...(startTime ? { startTime } : {}), ...(endTime ? { endTime } : {}) };
}

/** ListTracesRequest → SQL filter; empty strings and UNSPECIFIED enums mean "not given". */
function listFilter(req: ListTracesRequest): TraceFilter {
  const f: TraceFilter = timeWindow(req.startTime, req.endTime);
  if (req.workspaceId) f.workspaceId = req.workspaceId;
  if (req.agentRole) f.agentRole = req.agentRole;
  if (req.status !== TraceStatus.UNSPECIFIED) f.status = req.status;
  if (req.model) f.model = req.model;
  if (req.labelKey) f.labelKey = req.labelKey;
  if (req.labelValue) f.labelValue = req.labelValue;
  if (req.minCostMicros !== undefined) f.minCostMicros = req.minCostMicros;
  if (req.maxCostMicros !== undefined) f.maxCostMicros = req.maxCostMicros;
  if (req.riskLevel) f.riskLevel = req.riskLevel;
  if (req.trustStatus !== TrustStatus.UNSPECIFIED && req.trustStatus !== STORED_TRUST_STATUS) f.matchesNothing = true;
  return f;
}

/** GET /traces*, diff, replay and labels: everything read from stored traces. */
export class TraceQueryHandlers {
  constructor(private readonly db: Kysely<TraceDatabase>) {}

  /** Summaries of a page of rows and the cursor of the next page. */
  private page(rows: TracePageRow[], hasMore: boolean): { traces: TraceSummary[]; nextCursor: string } {
    const last = rows[rows.length - 1];
    return {
      traces: rows.map((row) => traceSummary(row, row.first_annotations ?? {})),
      nextCursor: hasMore && last ? encodeCursor({ startedAt: last.started_at_key, traceId: last.trace_id }) : "",
    };
  }

  /** The stored trace in scope with its steps (payloads included), or NotFound naming `field`. */
  private async load(scope: TraceScope, traceId: string, field = "trace_id"): Promise<{ row: TraceRow; trace: Trace; spans: Awaited<ReturnType<typeof listTraceSpans>> }> {
    const row = await findTrace(this.db, scope, traceId);
    if (!row) throw notFound(`trace ${traceId}`, field);
    const spans = await listTraceSpans(this.db, scope.tenantId, traceId);
    return { row, trace: traceView(row, spans), spans };
  }

  async listTraces(req: ListTracesRequest, ctx: HandlerContext): Promise<ListTracesResponse> {
    const scope = scopeOf(ctx, req.workspaceId);
    const filter = listFilter(req);
    const limit = req.limit || DEFAULT_LIST_LIMIT;
    const after = req.cursor ? decodeCursor(req.cursor) : undefined;
    const offset = after ? 0 : req.offset;
    const { rows, hasMore, total } = await listTraces(this.db, scope, filter, { limit, offset, after }, { withTotal: true });
    // An empty page carries no count (offset or cursor past the end); only then count apart.
    const matches = total ?? (await countTraces(this.db, scope, filter));
    return create(ListTracesResponseSchema, { ...this.page(rows, hasMore), total: matches, hasMore, limit, offset });
  }

  async getTrace(req: GetTraceRequest, ctx: HandlerContext): Promise<GetTraceResponse> {
    const { trace } = await this.load(scopeOf(ctx), req.traceId);
    return create(GetTraceResponseSchema, { trace: hasPermission(principalOf(ctx), "trace:view_payloads") ? trace : withholdPayloads(trace) });
  }

  async getTraceStats(req: GetTraceStatsRequest, ctx: HandlerContext): Promise<GetTraceStatsResponse> {
    const scope = scopeOf(ctx, req.workspaceId);
    const window = timeWindow(req.startTime, req.endTime);
    const row = await traceStats(this.db, scope, { endTime: new Date(), ...window, ...(req.workspaceId ? { workspaceId: req.workspaceId } : {}) });
    const total = Number(row.total_traces);
    const rate = (n: bigint) => (total === 0 ? 0 : Number(n) / total);
    return create(GetTraceStatsResponseSchema, {
      stats: create(TraceStatsSchema, {
        totalTraces: row.total_traces,
        usage: tokenUsage({ input: row.input_tokens, output: row.output_tokens, cacheRead: row.cache_read_tokens, cacheWrite: row.cache_write_tokens, reasoning: row.reasoning_tokens }),
        totalCostMicros: row.cost_micros,
        avgDurationMs: row.avg_duration_ms,
        errorRate: rate(row.error_traces),
        blockedRate: rate(row.blocked_traces),
      }),
    });
  }

  async diffTraces(req: DiffTracesRequest, ctx: HandlerContext): Promise<DiffTracesResponse> {
    const scope = scopeOf(ctx);
    const [base, compare] = await Promise.all([this.load(scope, req.baseTraceId, "base_trace_id"), this.load(scope, req.compareTraceId, "compare_trace_id")]);
    const diff = diffTraces(base.trace, compare.trace);
    return create(DiffTracesResponseSchema, {
      diff,
      summaryText: req.includeSummary === false ? "" : formatDiffSummary(diff, base.trace, compare.trace),
    });
  }

  async getReplayContext(req: GetReplayContextRequest, ctx: HandlerContext): Promise<GetReplayContextResponse> {
    const { row, spans } = await this.load(scopeOf(ctx), req.traceId);
    return replayContext(row, spans, !hasPermission(principalOf(ctx), "trace:view_payloads"));
  }

  async labelTrace(req: LabelTraceRequest, ctx: HandlerContext): Promise<LabelTraceResponse> {
    const labels = await replaceLabels(this.db, scopeOf(ctx), req.traceId, req.labels);
    if (!labels) throw notFound(`trace ${req.traceId}`, "trace_id");
    return create(LabelTraceResponseSchema, { traceId: req.traceId, labels });
  }

  async listTracesByLabel(req: ListTracesByLabelRequest, ctx: HandlerContext): Promise<ListTracesByLabelResponse> {
    const scope = scopeOf(ctx);
    const filter: TraceFilter = { labelKey: req.labelKey, ...(req.labelValue ? { labelValue: req.labelValue } : {}) };
    const after = req.cursor ? decodeCursor(req.cursor) : undefined;
    const { rows, hasMore } = await listTraces(this.db, scope, filter, { limit: req.limit || DEFAULT_LOOKUP_LIMIT, offset: 0, after });
    const page = this.page(rows, hasMore);
    return create(ListTracesByLabelResponseSchema, { ...page, count: rows.length, hasMore });
  }

  async listTracesByEntity(req: ListTracesByEntityRequest, ctx: HandlerContext): Promise<ListTracesByEntityResponse> {
    const scope = scopeOf(ctx);
    const entity = req.entity;
    if (entity.case === undefined) throw invalidField("entity", "one of task_id, document_id, message_id is required");
    const filter: TraceFilter =
      entity.case === "taskId" ? { taskId: entity.value } : entity.case === "documentId" ? { documentId: entity.value } : { messageId: entity.value };
    const entityType = entity.case === "taskId" ? EntityType.TASK : entity.case === "documentId" ? EntityType.DOCUMENT : EntityType.MESSAGE;
    const { rows, hasMore } = await listTraces(this.db, scope, filter, { limit: req.limit || DEFAULT_LOOKUP_LIMIT, offset: 0, after: req.cursor ? decodeCursor(req.cursor) : undefined });
    const page = this.page(rows, hasMore);
    return create(ListTracesByEntityResponseSchema, { entityType, entityId: entity.value, ...page, count: rows.length, hasMore });
  }
}
