/**
 * The audit chain's format, free of SQL: the canonical form of an entry, its hash, and the check
 * that walks a tenant's entries in seq order. docs/GOVERNANCE.md ("The audit log") describes the same format
 * for readers who verify an export without this code.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";

/** The fields an entry's hash covers (absent optional values are JSON null, never omitted). */
export interface ChainedFields {
  tenant_id: string;
  seq: bigint;
  prev_hash: string | null;
  event_type: string;
  workspace_id: string | null;
  trace_id: string | null;
  actor: string | null;
  data: Record<string, unknown>;
  created_at: Date;
}

export interface ChainedRow extends ChainedFields {
  hash: string;
}

/**
 * RFC 8785 (JCS) text of an entry. seq is a JSON number (exact below 2^53); created_at is
 * ISO-8601 UTC with milliseconds, e.g. "2026-11-24T02:10:00.123Z".
 */
export function canonicalEntry(fields: ChainedFields): string {
  const text = canonicalize({
    tenant_id: fields.tenant_id,
    seq: Number(fields.seq),
    prev_hash: fields.prev_hash,
    event_type: fields.event_type,
    workspace_id: fields.workspace_id,
    trace_id: fields.trace_id,
    actor: fields.actor,
    data: fields.data,
    created_at: fields.created_at.toISOString(),
  });
  if (text === undefined) throw new Error("audit entry has no JSON form");
  return text;
}

/** The fields of an entry the application knows before appending it; the database adds the rest. */
export type AppendedFields = Omit<ChainedFields, "seq" | "prev_hash" | "created_at">;

/**
 * The canonical text of an entry around the three values only the appending statement knows
 * (created_at, prev_hash, seq), for the `audit_append` SQL function (migration
 * 20261126020000): `beforeCreatedAt + <ISO-8601 UTC, ms> + beforePrevHash + <"hash" or null> +
 * ',"seq":' + <integer> + afterSeq` is exactly `canonicalEntry` of the full entry (JCS sorts the
 * keys, so their positions are fixed; a test checks the equality). `dataJson` is the payload's
 * canonical JSON.
 */
export function canonicalEntryParts(fields: AppendedFields, dataJson: string): { beforeCreatedAt: string; beforePrevHash: string; afterSeq: string } {
  const json = (value: string | null) => (value === null ? "null" : JSON.stringify(value));
  return {
    beforeCreatedAt: `{"actor":${json(fields.actor)},"created_at":"`,
    beforePrevHash: `","data":${dataJson},"event_type":${json(fields.event_type)},"prev_hash":`,
    afterSeq: `,"tenant_id":${json(fields.tenant_id)},"trace_id":${json(fields.trace_id)},"workspace_id":${json(fields.workspace_id)}}`,
  };
}

/** "sha256:" + lower-case hex SHA-256 of the entry's canonical JSON, UTF-8 encoded. */
export function entryHash(fields: ChainedFields): string {
  return `sha256:${createHash("sha256").update(canonicalEntry(fields), "utf8").digest("hex")}`;
}

/** The recorded head of a tenant's chain: what the last append left (seq 0 when none). */
export interface ChainHead {
  seq: bigint;
  hash: string | null;
}

export interface ChainVerification {
  ok: boolean;
  /** Lowest seq the failures implicate; 0n when ok. */
  firstBrokenSeq: bigint;
  /** `seq_<n>_<why>`, in seq order, at most MAX_REPORTED_FAILURES of them. */
  failures: string[];
  checkedCount: number;
  headSeq: bigint;
  headHash: string;
}

/** A broken chain usually breaks once; a long list would only repeat the cascade. */
export const MAX_REPORTED_FAILURES = 100;

type Why = "missing" | "hash_mismatch" | "prev_hash_mismatch" | "forged";

interface Link {
  seq: bigint;
  hash: string;
  /** The row's stored hash equals its recomputed hash. */
  selfOk: boolean;
}

/**
 * Walks rows in ascending seq order and records what does not verify:
 * - `missing`: a seq between the start and the head has no row (deleted);
 * - `hash_mismatch`: the row's content does not hash to its stored hash (edited);
 * - `prev_hash_mismatch`: the row's prev_hash is not the stored hash of the row before it;
 * - `forged`: the row hashes correctly yet is not the row the chain committed to — it lies beyond
 *   the recorded head, the head records another hash for its seq, or the next row's prev_hash
 *   names another hash while both rows hash correctly (a replaced row whose hash was recomputed).
 * Each row is checked against its neighbours' stored hashes, so one edited row is reported once
 * instead of breaking every later link.
 */
export class ChainChecker {
  private readonly failures: { seq: bigint; why: Why }[] = [];
  private expected: bigint;
  private prev: Link | undefined;
  private checked = 0;

  /**
   * @param head the recorded head
   * @param from first seq to check (≥ 1)
   * @param before the stored link of seq from − 1 (undefined when from is 1 or that row is gone)
   */
  constructor(
    private readonly head: ChainHead,
    from: bigint,
    before: Link | undefined,
  ) {
    this.expected = from;
    this.prev = before;
    if (from > 1n && before === undefined && from - 1n <= head.seq) this.fail(from - 1n, "missing");
  }

  add(row: ChainedRow): void {
    this.checked += 1;
    if (row.seq < this.expected) {
      // Impossible while the primary key holds; a second row for a seq is not part of the chain.
      this.fail(row.seq, "forged");
      return;
    }
    const contiguous = row.seq === this.expected;
    for (let seq = this.expected; seq < row.seq && seq <= this.head.seq && !this.full(); seq++) this.fail(seq, "missing");
    const selfOk = entryHash(row) === row.hash;
    if (row.seq > this.head.seq) {
      this.fail(row.seq, "forged");
    } else if (!selfOk) {
      this.fail(row.seq, "hash_mismatch");
    } else if (row.seq === this.head.seq && row.hash !== this.head.hash) {
      this.fail(row.seq, "forged");
    }
    if (row.seq === 1n && row.prev_hash !== null) {
      this.fail(row.seq, "prev_hash_mismatch");
    } else if (contiguous && this.prev !== undefined && row.prev_hash !== this.prev.hash) {
      if (this.prev.selfOk && selfOk) this.fail(this.prev.seq, "forged");
      this.fail(row.seq, "prev_hash_mismatch");
    }
    this.prev = { seq: row.seq, hash: row.hash, selfOk };
    this.expected = row.seq + 1n;
  }

  finish(): ChainVerification {
    for (let seq = this.expected; seq <= this.head.seq && !this.full(); seq++) this.fail(seq, "missing");
    const sorted = [...this.failures].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    const unique = sorted.filter((f, i) => i === 0 || f.seq !== sorted[i - 1]!.seq || f.why !== sorted[i - 1]!.why);
    return {
      ok: unique.length === 0,
      firstBrokenSeq: unique[0]?.seq ?? 0n,
      failures: unique.slice(0, MAX_REPORTED_FAILURES).map((f) => `seq_${f.seq}_${f.why}`),
      checkedCount: this.checked,
      headSeq: this.head.seq,
      headHash: this.head.hash ?? "",
    };
  }

  /** Rows arrive in seq order, so once the cap is reached later failures cannot be first. */
  private full(): boolean {
    return this.failures.length >= MAX_REPORTED_FAILURES * 2;
  }

  private fail(seq: bigint, why: Why): void {
    if (!this.full()) this.failures.push({ seq, why });
  }
}
