import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf, tenantWide, workspaceScope, type Principal } from "@clasper/auth";
import { invalidField } from "@clasper/core";
import {
  AppendAuditResponseSchema,
  AuditChainVerificationSchema,
  AuditEntrySchema,
  AuditEventType,
  AuditEventTypeSchema,
  AuditStatsSchema,
  ExportAuditChainResponseSchema,
  GetAuditStatsResponseSchema,
  ListAuditEntriesResponseSchema,
  VerifyAuditChainResponseSchema,
  type AppendAuditRequest,
  type AppendAuditResponse,
  type AuditChainVerification,
  type AuditEntry,
  type ExecutionAuditEvent,
  type ExportAuditChainRequest,
  type ExportAuditChainResponse,
  type GetAuditStatsRequest,
  type GetAuditStatsResponse,
  type ListAuditEntriesRequest,
  type ListAuditEntriesResponse,
  type VerifyAuditChainRequest,
  type VerifyAuditChainResponse,
} from "@clasper/proto";
import type { ChainVerification } from "../store/audit-chain.js";
import {
  appendAudit,
  auditStats,
  type AppendedAudit,
  exportAuditChain,
  isAuditEventType,
  listAuditEntries,
  verifyAuditChain,
  type AuditRow,
} from "../store/audit.js";
import type { GovernanceDatabase } from "../store/schema.js";

const DEFAULT_LIST_LIMIT = 100;
const DEFAULT_EXPORT_LIMIT = 1000;

/** REST name of each enum value: the lower-case suffix, e.g. BUDGET_WARNING → "budget_warning". */
const NAME_OF = new Map<AuditEventType, string>(
  AuditEventTypeSchema.values
    .filter((v) => v.number !== AuditEventType.UNSPECIFIED)
    .map((v) => [v.number as AuditEventType, v.localName.toLowerCase()]),
);
const TYPE_OF = new Map<string, AuditEventType>([...NAME_OF].map(([number, name]) => [name, number]));

/** The REST names of the proto enum (a test compares them with AUDIT_EVENT_TYPES). */
export const PROTO_AUDIT_EVENT_NAMES: readonly string[] = [...NAME_OF.values()];

function eventTypeName(type: AuditEventType, field: string): string {
  const name = NAME_OF.get(type);
  if (name === undefined || !isAuditEventType(name)) throw invalidField(field, "must be a known audit event type");
  return name;
}

/**
 * Cursors are opaque to callers but only carry a seq: a tenant's seq never changes and grows with
 * time, so a page boundary stays put while entries are appended.
 */
const CURSOR = /^v1:(0|[1-9]\d{0,18})$/;

function encodeCursor(seq: bigint): string {
  return Buffer.from(`v1:${seq}`, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): bigint | undefined {
  if (cursor === "") return undefined;
  const match = /^[A-Za-z0-9_-]+$/.test(cursor) ? CURSOR.exec(Buffer.from(cursor, "base64url").toString("utf8")) : null;
  if (!match) throw invalidField("cursor", "is not a cursor this endpoint returned");
  return BigInt(match[1]!);
}

function timeWindow(start: Timestamp | undefined, end: Timestamp | undefined): { start?: Date; end?: Date } {
  const window: { start?: Date; end?: Date } = {};
  if (start) window.start = timestampDate(start);
  if (end) window.end = timestampDate(end);
  if (window.start && window.end && window.end <= window.start) throw invalidField("end_time", "must be after start_time");
  return window;
}

function toEntry(row: AuditRow): AuditEntry {
  return create(AuditEntrySchema, {
    seq: row.seq,
    eventType: TYPE_OF.get(row.event_type) ?? AuditEventType.UNSPECIFIED,
    workspaceId: row.workspace_id ?? "",
    traceId: row.trace_id ?? "",
    userId: row.actor ?? "",
    eventData: row.data as AuditEntry["eventData"],
    createdAt: timestampFromDate(row.created_at),
    prevEventHash: row.prev_hash ?? "",
    eventHash: row.hash,
  });
}

function toVerification(result: ChainVerification): AuditChainVerification {
  return create(AuditChainVerificationSchema, {
    ok: result.ok,
    firstBrokenSeq: result.firstBrokenSeq,
    failures: result.failures,
    checkedCount: BigInt(result.checkedCount),
    headSeq: result.headSeq,
    headHash: result.headHash,
  });
}

type Executor = Kysely<GovernanceDatabase>;

/**
 * Appends an entry an internal caller sent (AppendAudit, or an ExecutionAuditEvent carried by
 * Preflight / SettleBudget) for the verified principal: its tenant, and its user as the actor.
 * `field` names the request field a bad event type is reported under.
 */
export function appendCallerAudit(db: Executor, principal: Principal, event: AppendAuditRequest | ExecutionAuditEvent, field: string): Promise<AppendedAudit> {
  return appendAudit(db, principal.tenantId, {
    eventType: eventTypeName(event.eventType, field),
    workspaceId: event.workspaceId,
    traceId: event.traceId,
    actor: principal.userId,
    data: event.eventData ?? {},
    idempotencyKey: event.idempotencyKey,
  });
}

/**
 * The tamper-evident audit log: AppendAudit (internal), GET /audit, /audit/stats, /audit/verify,
 * export. Listing and statistics are narrowed to the token's workspace when it is bound to one.
 */
export class AuditHandlers {
  constructor(private readonly db: Kysely<GovernanceDatabase>) {}

  async appendAudit(req: AppendAuditRequest, ctx: HandlerContext): Promise<AppendAuditResponse> {
    const appended = await appendCallerAudit(this.db, principalOf(ctx), req, "event_type");
    return create(AppendAuditResponseSchema, {
      seq: appended.seq,
      eventHash: appended.hash,
      createdAt: timestampFromDate(appended.createdAt),
    });
  }

  async listAuditEntries(req: ListAuditEntriesRequest, ctx: HandlerContext): Promise<ListAuditEntriesResponse> {
    const principal = principalOf(ctx);
    const workspaceId = workspaceScope(principal, req.workspaceId);
    const window = timeWindow(req.startTime, req.endTime);
    const beforeSeq = decodeCursor(req.cursor);
    const limit = req.limit || DEFAULT_LIST_LIMIT;
    const { entries, total, hasMore } = await listAuditEntries(
      this.db,
      principal.tenantId,
      {
        ...(workspaceId ? { workspaceId } : {}),
        ...(req.traceId ? { traceId: req.traceId } : {}),
        ...(req.eventType !== AuditEventType.UNSPECIFIED ? { eventType: eventTypeName(req.eventType, "event_type") } : {}),
        ...(req.userId ? { actor: req.userId } : {}),
        ...window,
      },
      { limit, offset: req.offset, ...(beforeSeq !== undefined ? { beforeSeq } : {}) },
    );
    const last = entries[entries.length - 1];
    return create(ListAuditEntriesResponseSchema, {
      entries: entries.map(toEntry),
      total,
      hasMore,
      nextCursor: hasMore && last ? encodeCursor(last.seq) : "",
    });
  }

  async getAuditStats(req: GetAuditStatsRequest, ctx: HandlerContext): Promise<GetAuditStatsResponse> {
    const principal = principalOf(ctx);
    const stats = await auditStats(this.db, principal.tenantId, { ...timeWindow(req.startTime, req.endTime), workspaceId: principal.workspaceId });
    return create(GetAuditStatsResponseSchema, {
      stats: create(AuditStatsSchema, {
        totalEntries: BigInt(stats.total),
        entriesByType: Object.fromEntries(Object.entries(stats.byType).map(([type, n]) => [type, BigInt(n)])),
        ...(stats.oldest ? { oldestEntryAt: timestampFromDate(stats.oldest) } : {}),
        ...(stats.newest ? { newestEntryAt: timestampFromDate(stats.newest) } : {}),
      }),
    });
  }

  async verifyAuditChain(req: VerifyAuditChainRequest, ctx: HandlerContext): Promise<VerifyAuditChainResponse> {
    const tenantId = tenantWide(principalOf(ctx), "the audit chain");
    const result = await verifyAuditChain(this.db, tenantId, { fromSeq: req.fromSeq });
    if (req.fromSeq > 1n && req.fromSeq > result.headSeq) {
      throw invalidField("from_seq", `is beyond the head of the chain (seq ${result.headSeq})`);
    }
    return create(VerifyAuditChainResponseSchema, { verification: toVerification(result) });
  }

  async exportAuditChain(req: ExportAuditChainRequest, ctx: HandlerContext): Promise<ExportAuditChainResponse> {
    const tenantId = tenantWide(principalOf(ctx), "the audit chain");
    const afterSeq = decodeCursor(req.cursor);
    const limit = req.limit || DEFAULT_EXPORT_LIMIT;
    const [verification, page] = await Promise.all([
      verifyAuditChain(this.db, tenantId),
      exportAuditChain(this.db, tenantId, { limit, ...(afterSeq !== undefined ? { afterSeq } : {}) }),
    ]);
    const last = page.entries[page.entries.length - 1];
    return create(ExportAuditChainResponseSchema, {
      verification: toVerification(verification),
      chain: page.entries.map(toEntry),
      hasMore: page.hasMore,
      nextCursor: page.hasMore && last ? encodeCursor(last.seq) : "",
    });
  }
}
