import type { ColumnType } from "kysely";

/** One entry of a tenant's hash chain (migration 20261124021000_audit_log). Rows are never updated. */
export interface AuditLogTable {
  tenant_id: string;
  /** 1, 2, 3… per tenant, gap-free. int8 → bigint on both backends. */
  seq: ColumnType<bigint, bigint, never>;
  /** `hash` of seq − 1; null for seq 1. */
  prev_hash: string | null;
  /** "sha256:" + hex SHA-256 of the entry's canonical JSON (RFC 8785). */
  hash: string;
  event_type: string;
  workspace_id: string | null;
  trace_id: string | null;
  actor: string | null;
  data: ColumnType<Record<string, unknown>, string, never>;
  created_at: ColumnType<Date, Date, never>;
  idempotency_key: string | null;
}

/** Each tenant's last appended (seq, hash); the row whose lock serializes a tenant's appends. */
export interface AuditHeadsTable {
  tenant_id: string;
  seq: ColumnType<bigint, bigint | undefined, bigint>;
  hash: string | null;
}

/** Tables of the audit area of the governance schema. */
export interface AuditTables {
  audit_log: AuditLogTable;
  audit_heads: AuditHeadsTable;
}
