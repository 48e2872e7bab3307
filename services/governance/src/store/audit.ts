import canonicalize from "canonicalize";
import type { Kysely, Selectable, Transaction } from "kysely";
import { invalidField } from "@clasper/core";
import { canonicalEntryParts, ChainChecker, entryHash, type ChainHead, type ChainVerification } from "./audit-chain.js";
import { storedFunction } from "./prepared-statement.js";
import type { AuditLogTable } from "./schema-audit.js";
import type { GovernanceDatabase } from "./schema.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export type AuditRow = Selectable<AuditLogTable>;

/**
 * Every event type the chain accepts: the 33 of the original (seed-api §5.4) plus those later
 * features emit. The same names, upper-cased with an `AUDIT_EVENT_TYPE_` prefix, are the proto enum;
 * a test keeps the two equal.
 */
export const AUDIT_EVENT_TYPES = [
  "agent_execution_started",
  "agent_execution_completed",
  "agent_execution_failed",
  "tool_call_requested",
  "tool_call_succeeded",
  "tool_call_failed",
  "tool_permission_denied",
  "tool_authorization_requested",
  "tool_authorization_granted",
  "tool_authorization_denied",
  "skill_published",
  "skill_test_run",
  "skill_state_changed",
  "skill_deprecated_used",
  "budget_warning",
  "budget_exceeded",
  "workspace_change",
  "auth_success",
  "auth_failure",
  "rate_limit_exceeded",
  "config_change",
  "system_startup",
  "system_shutdown",
  "ops_override_used",
  "adapter_trace_ingested",
  "adapter_audit_event",
  "adapter_cost_ingested",
  "adapter_metrics_ingested",
  "adapter_violation_reported",
  "adapter_telemetry_unsigned",
  "adapter_telemetry_signature_invalid",
  "policy_decision_pending",
  "policy_decision_resolved",
  // Not in the original; emitted by approvals, preflight, retention and evals.
  "policy_decision_consumed",
  "execution_denied",
  "retention_enforced",
  "eval_completed",
] as const;

export type AuditEventTypeName = (typeof AUDIT_EVENT_TYPES)[number];

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(AUDIT_EVENT_TYPES);

export function isAuditEventType(value: string): value is AuditEventTypeName {
  return EVENT_TYPE_SET.has(value);
}

/** Largest event payload, as canonical JSON in UTF-8: audit data is a record, not a blob store. */
export const MAX_AUDIT_DATA_BYTES = 64 * 1024;

const MAX_LENGTH = { workspace_id: 128, trace_id: 64, actor: 256, idempotency_key: 256 } as const;

export interface AuditEventInput {
  /** One of AUDIT_EVENT_TYPES. */
  eventType: string;
  workspaceId?: string;
  traceId?: string;
  /** Acting user, or "service:<name>". */
  actor?: string;
  /** JSON payload: no secrets, no raw prompts. */
  data: Record<string, unknown>;
  /** Retries with the same key return the entry already appended instead of appending again. */
  idempotencyKey?: string;
}

export interface AppendedAudit {
  seq: bigint;
  hash: string;
  createdAt: Date;
}

/**
 * Appends one event to the tenant's chain and returns its position and hash: one statement, the
 * `audit_append` SQL function (migration 20261126020000), which locks the tenant's head row, looks
 * the idempotency key up after the lock, and inserts the entry with its hash.
 *
 * Given a Transaction it runs inside it (the entry commits or rolls back with the caller's work)
 * and holds the tenant's head row lock until that transaction ends, so append last, after the
 * caller's own row locks, to keep the lock short and the lock order the same everywhere. Given
 * the Kysely handle it is one autocommit statement.
 *
 * Throws InvalidArgument (naming the field) for an unknown event type or an unstorable payload.
 */
export async function appendAudit(db: Executor, tenantId: string, event: AuditEventInput): Promise<AppendedAudit> {
  const prepared = prepare(tenantId, event);
  const parts = canonicalEntryParts(prepared, prepared.dataJson);
  const row = await appendCall(db, [
    prepared.tenant_id,
    prepared.event_type,
    prepared.workspace_id,
    prepared.trace_id,
    prepared.actor,
    prepared.dataJson,
    prepared.idempotency_key,
    parts.beforeCreatedAt,
    parts.beforePrevHash,
    parts.afterSeq,
  ]);
  if (!row) throw new Error("audit_append returned no row");
  return { seq: BigInt(row.entry_seq), hash: row.entry_hash, createdAt: row.entry_created_at };
}

const appendCall = storedFunction<{ entry_seq: bigint | string; entry_hash: string; entry_created_at: Date; appended: boolean }>("audit_append", [
  "text", "text", "text", "text", "text", // tenant, event type, workspace, trace, actor
  "text", "text", // canonical payload, idempotency key
  "text", "text", "text", // the canonical entry around created_at, prev_hash and seq
]);

interface PreparedEvent {
  tenant_id: string;
  event_type: string;
  workspace_id: string | null;
  trace_id: string | null;
  actor: string | null;
  /** The payload as it is hashed and stored (canonical JSON). */
  dataJson: string;
  data: Record<string, unknown>;
  idempotency_key: string | null;
}

function prepare(tenantId: string, event: AuditEventInput): PreparedEvent {
  if (!tenantId) throw invalidField("tenant_id", "is required");
  if (!isAuditEventType(event.eventType)) throw invalidField("event_type", `unknown audit event type "${event.eventType}"`);
  const data = normalizedData(event.data);
  return {
    tenant_id: tenantId,
    event_type: event.eventType,
    workspace_id: optional("workspace_id", event.workspaceId),
    trace_id: optional("trace_id", event.traceId),
    actor: optional("actor", event.actor),
    idempotency_key: optional("idempotency_key", event.idempotencyKey),
    ...data,
  };
}

function optional(field: keyof typeof MAX_LENGTH, value: string | undefined): string | null {
  if (value === undefined || value === "") return null;
  if (value.length > MAX_LENGTH[field]) throw invalidField(field, `must be at most ${MAX_LENGTH[field]} characters`);
  if (value.includes("\u0000")) throw invalidField(field, "must not contain NUL characters");
  return value;
}

/**
 * The payload as canonical JSON text and the value that text parses to. Hashing the parsed text
 * rather than the caller's object means what is hashed is exactly what jsonb stores and hands
 * back (undefined members dropped, Dates as strings, -0 as 0), so verification recomputes the
 * same hash from the stored row.
 */
function normalizedData(value: unknown): { dataJson: string; data: Record<string, unknown> } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidField("event_data", "must be a JSON object");
  }
  let dataJson: string | undefined;
  let data: Record<string, unknown>;
  try {
    // Refuses NaN, Infinity, BigInt, cycles and lone surrogates; JSON.parse refuses the rest.
    dataJson = canonicalize(value);
    data = JSON.parse(dataJson ?? "") as Record<string, unknown>;
  } catch (err) {
    throw invalidField("event_data", `is not representable as JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (Buffer.byteLength(dataJson!, "utf8") > MAX_AUDIT_DATA_BYTES) {
    throw invalidField("event_data", `must be at most ${MAX_AUDIT_DATA_BYTES} bytes as JSON`);
  }
  if (containsNul(data)) throw invalidField("event_data", "must not contain NUL characters (jsonb cannot store them)");
  return { dataJson: dataJson!, data };
}

function containsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(containsNul);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([key, item]) => key.includes("\u0000") || containsNul(item));
  }
  return false;
}

export interface AuditFilter {
  workspaceId?: string;
  traceId?: string;
  eventType?: string;
  actor?: string;
  /** created_at ≥ start */
  start?: Date;
  /** created_at < end */
  end?: Date;
}

export interface AuditPage {
  /** Only entries with a smaller seq (the cursor of a newest-first listing). */
  beforeSeq?: bigint;
  limit: number;
  offset?: number;
}

/** A tenant's entries matching the filter, newest first, with the count of all matches. */
export async function listAuditEntries(
  db: Executor,
  tenantId: string,
  filter: AuditFilter,
  page: AuditPage,
): Promise<{ entries: AuditRow[]; total: number; hasMore: boolean }> {
  const matching = db
    .selectFrom("audit_log")
    .where("tenant_id", "=", tenantId)
    .$if(filter.workspaceId !== undefined, (q) => q.where("workspace_id", "=", filter.workspaceId!))
    .$if(filter.traceId !== undefined, (q) => q.where("trace_id", "=", filter.traceId!))
    .$if(filter.eventType !== undefined, (q) => q.where("event_type", "=", filter.eventType!))
    .$if(filter.actor !== undefined, (q) => q.where("actor", "=", filter.actor!))
    .$if(filter.start !== undefined, (q) => q.where("created_at", ">=", filter.start!))
    .$if(filter.end !== undefined, (q) => q.where("created_at", "<", filter.end!));
  const [rows, count] = await Promise.all([
    matching
      .selectAll()
      .$if(page.beforeSeq !== undefined, (q) => q.where("seq", "<", page.beforeSeq!))
      .orderBy("seq", "desc")
      .limit(page.limit + 1)
      .offset(page.offset ?? 0)
      .execute(),
    matching.select((eb) => eb.fn.countAll<bigint>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { entries: rows.slice(0, page.limit), total: Number(count.n), hasMore: rows.length > page.limit };
}

export interface AuditStatsRow {
  total: number;
  byType: Record<string, number>;
  oldest: Date | undefined;
  newest: Date | undefined;
}

/** Entries per event type and the time range they span, within [start, end), of one workspace when given. */
export async function auditStats(db: Executor, tenantId: string, filter: { start?: Date; end?: Date; workspaceId?: string | undefined } = {}): Promise<AuditStatsRow> {
  const rows = await db
    .selectFrom("audit_log")
    .where("tenant_id", "=", tenantId)
    .$if(filter.workspaceId !== undefined, (q) => q.where("workspace_id", "=", filter.workspaceId!))
    .$if(filter.start !== undefined, (q) => q.where("created_at", ">=", filter.start!))
    .$if(filter.end !== undefined, (q) => q.where("created_at", "<", filter.end!))
    .select((eb) => [
      "event_type",
      eb.fn.countAll<bigint>().as("n"),
      eb.fn.min("created_at").as("oldest"),
      eb.fn.max("created_at").as("newest"),
    ])
    .groupBy("event_type")
    .execute();
  const stats: AuditStatsRow = { total: 0, byType: {}, oldest: undefined, newest: undefined };
  for (const row of rows) {
    const n = Number(row.n);
    stats.total += n;
    stats.byType[row.event_type] = n;
    if (!stats.oldest || row.oldest < stats.oldest) stats.oldest = row.oldest;
    if (!stats.newest || row.newest > stats.newest) stats.newest = row.newest;
  }
  return stats;
}

/** What an entry's hash covers, plus the hash: all verification reads. */
const CHAINED_COLUMNS = ["seq", "tenant_id", "prev_hash", "hash", "event_type", "workspace_id", "trace_id", "actor", "data", "created_at"] as const;

/** Rows read per round trip while verifying. */
const VERIFY_BATCH = 2000;

/**
 * Recomputes the tenant's chain from `fromSeq` (default 1) to the end and reports the first seq
 * that does not verify (see ChainChecker for the reasons). Reads one consistent snapshot: given the
 * Kysely handle it opens a REPEATABLE READ transaction, so appends racing the check are not
 * mistaken for rows beyond the head.
 */
export async function verifyAuditChain(db: Executor, tenantId: string, options: { fromSeq?: bigint } = {}): Promise<ChainVerification> {
  const run = (trx: Executor) => verifyWithin(trx, tenantId, options.fromSeq && options.fromSeq > 1n ? options.fromSeq : 1n);
  if (db.isTransaction) return run(db);
  return (db as Kysely<GovernanceDatabase>).transaction().setIsolationLevel("repeatable read").setAccessMode("read only").execute(run);
}

async function verifyWithin(db: Executor, tenantId: string, from: bigint): Promise<ChainVerification> {
  const head = await readHead(db, tenantId);
  const before =
    from > 1n
      ? await db
          .selectFrom("audit_log")
          .select(CHAINED_COLUMNS)
          .where("tenant_id", "=", tenantId)
          .where("seq", "=", from - 1n)
          .executeTakeFirst()
      : undefined;
  const checker = new ChainChecker(head, from, before && { seq: before.seq, hash: before.hash, selfOk: entryHash(before) === before.hash });
  for (let after = from - 1n; ; ) {
    const rows = await db
      .selectFrom("audit_log")
      .select(CHAINED_COLUMNS)
      .where("tenant_id", "=", tenantId)
      .where("seq", ">", after)
      .orderBy("seq")
      .limit(VERIFY_BATCH)
      .execute();
    for (const row of rows) checker.add(row);
    if (rows.length < VERIFY_BATCH) break;
    after = rows[rows.length - 1]!.seq;
  }
  return checker.finish();
}

/** The tenant's recorded head; seq 0 when nothing was ever appended. */
export async function readHead(db: Executor, tenantId: string): Promise<ChainHead> {
  const row = await db.selectFrom("audit_heads").select(["seq", "hash"]).where("tenant_id", "=", tenantId).executeTakeFirst();
  return row ?? { seq: 0n, hash: null };
}

/** A page of the tenant's chain, oldest first, after `afterSeq`. */
export async function exportAuditChain(
  db: Executor,
  tenantId: string,
  page: { afterSeq?: bigint; limit: number },
): Promise<{ entries: AuditRow[]; hasMore: boolean }> {
  const rows = await db
    .selectFrom("audit_log")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .$if(page.afterSeq !== undefined, (q) => q.where("seq", ">", page.afterSeq!))
    .orderBy("seq")
    .limit(page.limit + 1)
    .execute();
  return { entries: rows.slice(0, page.limit), hasMore: rows.length > page.limit };
}
