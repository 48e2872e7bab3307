import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql, type Kysely } from "kysely";
import { createDatabase, withTransaction, type Database } from "@clasper/db";
import { testBackendFromEnv, useFreshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { ConnectError } from "@connectrpc/connect";
import { errorInfoOf } from "@clasper/core";
import { AuditEventType, AuditEventTypeSchema } from "@clasper/proto";
import canonicalize from "canonicalize";
import { canonicalEntry, canonicalEntryParts, entryHash } from "../src/store/audit-chain.js";
import {
  AUDIT_EVENT_TYPES,
  appendAudit,
  auditStats,
  listAuditEntries,
  readHead,
  verifyAuditChain,
} from "../src/store/audit.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { appendMany, sqlState } from "./audit-support.js";

const backend = testBackendFromEnv();
let database: FreshDatabase;
let db: Kysely<GovernanceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "governance", (fresh) => {
  database = fresh;
  db = fresh.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
});

function fieldOf(err: unknown): string | undefined {
  return err instanceof ConnectError ? errorInfoOf(err)?.field : undefined;
}

describe(`audit chain format`, () => {
  it("hashes the RFC 8785 form of the entry (a fixed vector the docs' recipe reproduces)", () => {
    const fields = {
      tenant_id: "tenant-a",
      seq: 2n,
      prev_hash: "sha256:" + "a".repeat(64),
      event_type: "budget_warning",
      workspace_id: null,
      trace_id: "trace-1",
      actor: "user-1",
      data: { z: 1, a: [true, null, "é"], m: { y: 0.5, b: 1e21 } },
      created_at: new Date("2026-11-24T02:10:00.123Z"),
    };
    expect(canonicalEntry(fields)).toBe(
      '{"actor":"user-1","created_at":"2026-11-24T02:10:00.123Z","data":{"a":[true,null,"é"],"m":{"b":1e+21,"y":0.5},"z":1},' +
        '"event_type":"budget_warning","prev_hash":"sha256:' + "a".repeat(64) + '","seq":2,"tenant_id":"tenant-a","trace_id":"trace-1","workspace_id":null}',
    );
    expect(entryHash(fields)).toMatch(/^sha256:[0-9a-f]{64}$/);
    // Every hashed field matters.
    expect(entryHash({ ...fields, seq: 3n })).not.toBe(entryHash(fields));
    expect(entryHash({ ...fields, tenant_id: "tenant-b" })).not.toBe(entryHash(fields));
  });

  it("splits the canonical text around created_at, prev_hash and seq exactly as the append statement rejoins it", () => {
    const awkward = ['quote " back\\slash', "ctl \u0001\n\t", "ünïcødé 🚀 \u2028", "", "}{,:"];
    for (const text of awkward) {
      for (const prev of [null, "sha256:" + "b".repeat(64)]) {
        const fields = {
          tenant_id: `t ${text}`,
          seq: 9007199254740991n,
          prev_hash: prev,
          event_type: "config_change",
          workspace_id: text === "" ? null : text,
          trace_id: null,
          actor: text,
          data: { text, n: [1.5, -0, 1e21], nested: { [text]: true } },
          created_at: new Date("2026-01-02T03:04:05.006Z"),
        };
        const parts = canonicalEntryParts(fields, canonicalize(fields.data)!);
        const joined = parts.beforeCreatedAt + fields.created_at.toISOString() + parts.beforePrevHash + (prev === null ? "null" : `"${prev}"`) + `,"seq":${fields.seq}` + parts.afterSeq;
        expect(joined).toBe(canonicalEntry(fields));
      }
    }
  });

  it("accepts exactly the event types of the proto enum", () => {
    const protoNames = AuditEventTypeSchema.values.filter((v) => v.number !== AuditEventType.UNSPECIFIED).map((v) => v.localName.toLowerCase());
    expect([...AUDIT_EVENT_TYPES].sort()).toEqual(protoNames.sort());
    expect(AUDIT_EVENT_TYPES).toContain("ops_override_used");
  });
});

describe(`audit store (${backend})`, () => {
  it("appends a contiguous chain: seq from 1, each prev_hash the previous hash", async () => {
    const first = await appendAudit(db, "t-basic", { eventType: "config_change", actor: "u", data: { action: "budget_set" } });
    const second = await appendAudit(db, "t-basic", { eventType: "budget_warning", workspaceId: "ws", traceId: "tr", data: {} });
    expect(first.seq).toBe(1n);
    expect(second.seq).toBe(2n);
    expect(second.createdAt.getTime()).toBeGreaterThanOrEqual(first.createdAt.getTime());
    const rows = await db.selectFrom("audit_log").selectAll().where("tenant_id", "=", "t-basic").orderBy("seq").execute();
    expect(rows.map((r) => r.prev_hash)).toEqual([null, first.hash]);
    expect(rows.map((r) => r.hash)).toEqual([first.hash, second.hash]);
    expect(rows[1]).toMatchObject({ workspace_id: "ws", trace_id: "tr", actor: null, event_type: "budget_warning", data: {} });
    expect(await readHead(db, "t-basic")).toEqual({ seq: 2n, hash: second.hash });
    expect(await verifyAuditChain(db, "t-basic")).toMatchObject({ ok: true, firstBrokenSeq: 0n, failures: [], checkedCount: 2, headSeq: 2n, headHash: second.hash });
  });

  it("stores the payload as it was hashed: Dates as strings, undefined members dropped", async () => {
    const when = new Date("2026-01-02T03:04:05.678Z");
    await appendAudit(db, "t-payload", { eventType: "config_change", data: { when, gone: undefined, n: -0, deep: { big: 12345678901234, s: "ünïcødé 🚀" } } });
    const row = await db.selectFrom("audit_log").selectAll().where("tenant_id", "=", "t-payload").executeTakeFirstOrThrow();
    expect(row.data).toEqual({ when: when.toISOString(), n: 0, deep: { big: 12345678901234, s: "ünïcødé 🚀" } });
    expect((await verifyAuditChain(db, "t-payload")).ok).toBe(true);
  });

  it("hashes in the database exactly what verification recomputes, whatever the strings contain", async () => {
    for (const text of ['quote " back\\slash', "ctl \u0001\n\t\u007f", "ünïcødé 🚀 \u2028", "}{,:"]) {
      await appendAudit(db, "t-strings", { eventType: "config_change", actor: text, workspaceId: text, traceId: text.slice(0, 8), data: { [text]: text } });
    }
    expect(await verifyAuditChain(db, "t-strings")).toMatchObject({ ok: true, checkedCount: 4 });
  });

  it("runs inside the caller's transaction: a rollback leaves no entry and no gap", async () => {
    await appendAudit(db, "t-trx", { eventType: "config_change", data: { n: 1 } });
    await expect(
      withTransaction(db, async (trx) => {
        const inside = await appendAudit(trx, "t-trx", { eventType: "budget_exceeded", data: { n: 2 } });
        expect(inside.seq).toBe(2n);
        // The entry is visible to the transaction that appended it.
        expect(await trx.selectFrom("audit_log").select("seq").where("tenant_id", "=", "t-trx").execute()).toHaveLength(2);
        throw new Error("caller's work failed");
      }),
    ).rejects.toThrow("caller's work failed");
    expect(await readHead(db, "t-trx")).toMatchObject({ seq: 1n });
    const committed = await withTransaction(db, (trx) => appendAudit(trx, "t-trx", { eventType: "budget_exceeded", data: { n: 3 } }));
    expect(committed.seq).toBe(2n);
    expect((await verifyAuditChain(db, "t-trx")).ok).toBe(true);
  });

  it("appends once per idempotency key", async () => {
    const event = { eventType: "budget_warning", data: { percent: 80 }, idempotencyKey: "exec-1:budget_warning" };
    const first = await appendAudit(db, "t-idem", event);
    const again = await appendAudit(db, "t-idem", { ...event, data: { percent: 81 } });
    expect(again).toEqual(first);
    const other = await appendAudit(db, "t-idem-other", event);
    expect(other.seq).toBe(1n);
    expect((await readHead(db, "t-idem")).seq).toBe(1n);
  });

  // The key is looked up in the statement that waits for the head lock: an entry committed during
  // that wait must still be found, and a different key still appended after it.
  it.skipIf(backend === "pglite")("appends once per key when appends race for the head lock", async () => {
    const event = { eventType: "budget_warning", data: { percent: 80 }, idempotencyKey: "exec-race:budget_warning" };
    let same: Promise<unknown> | undefined;
    let other: Promise<{ seq: bigint }> | undefined;
    const first = await withTransaction(db, async (trx) => {
      const appended = await appendAudit(trx, "t-race", event);
      // Both queue on the head row this transaction holds until it commits.
      same = appendAudit(db, "t-race", event);
      other = appendAudit(db, "t-race", { ...event, idempotencyKey: "exec-race:other" });
      await new Promise((resolve) => setTimeout(resolve, 150));
      return appended;
    });
    expect(await same).toEqual(first);
    expect((await other!).seq).toBe(2n);
    expect((await readHead(db, "t-race")).seq).toBe(2n);
    expect((await verifyAuditChain(db, "t-race")).ok).toBe(true);
  });

  it.each([
    [{ eventType: "budget.exceeded", data: {} }, "event_type"],
    [{ eventType: "", data: {} }, "event_type"],
    [{ eventType: "config_change", data: [] as unknown as Record<string, unknown> }, "event_data"],
    [{ eventType: "config_change", data: { x: Number.NaN } }, "event_data"],
    [{ eventType: "config_change", data: { x: 10n } }, "event_data"],
    [{ eventType: "config_change", data: { x: "nul\u0000byte" } }, "event_data"],
    [{ eventType: "config_change", data: { x: "lone \ud800 surrogate" } }, "event_data"],
    [{ eventType: "config_change", data: { x: "y".repeat(70_000) } }, "event_data"],
    [{ eventType: "config_change", workspaceId: "w".repeat(129), data: {} }, "workspace_id"],
    [{ eventType: "config_change", traceId: "t".repeat(65), data: {} }, "trace_id"],
  ])("refuses bad input naming the field: %#", async (event, field) => {
    const err = await appendAudit(db, "t-bad", event).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(fieldOf(err)).toBe(field);
    expect(await readHead(db, "t-bad")).toEqual({ seq: 0n, hash: null });
  });

  it("refuses a cyclic payload", async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    expect(fieldOf(await appendAudit(db, "t-bad", { eventType: "config_change", data: cyclic }).catch((e: unknown) => e))).toBe("event_data");
  });

  it("lists newest first with filters, keyset pages and totals; never another tenant's entries", async () => {
    await appendMany(db, "t-list", 12);
    await appendMany(db, "t-list-other", 5);
    const all = await listAuditEntries(db, "t-list", {}, { limit: 5 });
    expect(all.total).toBe(12);
    expect(all.hasMore).toBe(true);
    expect(all.entries.map((e) => e.seq)).toEqual([12n, 11n, 10n, 9n, 8n]);
    const next = await listAuditEntries(db, "t-list", {}, { limit: 5, beforeSeq: 8n });
    expect(next.entries.map((e) => e.seq)).toEqual([7n, 6n, 5n, 4n, 3n]);
    const last = await listAuditEntries(db, "t-list", {}, { limit: 5, beforeSeq: 3n });
    expect(last).toMatchObject({ hasMore: false });
    expect(last.entries.map((e) => e.seq)).toEqual([2n, 1n]);

    const warnings = await listAuditEntries(db, "t-list", { eventType: "budget_warning" }, { limit: 100 });
    expect(warnings.entries.map((e) => e.seq)).toEqual([12n, 10n, 8n, 6n, 4n, 2n]);
    const workspace = await listAuditEntries(db, "t-list", { workspaceId: "ws-1" }, { limit: 100 });
    expect(workspace.entries.map((e) => e.seq)).toEqual([9n, 3n]);
    const trace = await listAuditEntries(db, "t-list", { traceId: "trace-7" }, { limit: 100 });
    expect(trace.entries.map((e) => e.seq)).toEqual([7n]);
    expect((await listAuditEntries(db, "t-list", { actor: "nobody" }, { limit: 100 })).total).toBe(0);
    const offset = await listAuditEntries(db, "t-list", {}, { limit: 2, offset: 10 });
    expect(offset.entries.map((e) => e.seq)).toEqual([2n, 1n]);

    const rows = await db.selectFrom("audit_log").select(["seq", "created_at"]).where("tenant_id", "=", "t-list").orderBy("seq").execute();
    const sixth = rows[5]!.created_at;
    const since = await listAuditEntries(db, "t-list", { start: sixth }, { limit: 100 });
    expect(since.entries.every((e) => e.created_at >= sixth)).toBe(true);
    const until = await listAuditEntries(db, "t-list", { end: sixth }, { limit: 100 });
    expect(until.entries.every((e) => e.created_at < sixth)).toBe(true);
    expect(since.total + until.total).toBe(12);

    expect((await listAuditEntries(db, "t-list-other", { traceId: "trace-7" }, { limit: 100 })).total).toBe(0);
    expect((await listAuditEntries(db, "t-nobody", {}, { limit: 100 })).entries).toEqual([]);
  });

  it("counts entries per type within a window", async () => {
    await appendMany(db, "t-stats", 5);
    const stats = await auditStats(db, "t-stats");
    expect(stats).toMatchObject({ total: 5, byType: { config_change: 3, budget_warning: 2 } });
    expect(stats.oldest!.getTime()).toBeLessThanOrEqual(stats.newest!.getTime());
    expect(await auditStats(db, "t-stats", { start: new Date(stats.newest!.getTime() + 1) })).toMatchObject({ total: 0, byType: {} });
    expect(await auditStats(db, "t-none")).toEqual({ total: 0, byType: {}, oldest: undefined, newest: undefined });
  });

  it("verifies from a given seq, checking its link to the one before", async () => {
    await appendMany(db, "t-from", 6);
    expect(await verifyAuditChain(db, "t-from", { fromSeq: 4n })).toMatchObject({ ok: true, checkedCount: 3, headSeq: 6n });
  });

  it("refuses, in the database, an insert that does not continue the head", async () => {
    await appendMany(db, "t-fork", 3);
    const head = await readHead(db, "t-fork");
    const row = { tenant_id: "t-fork", event_type: "config_change", workspace_id: null, trace_id: null, actor: null, data: {}, created_at: new Date() };
    for (const [seq, prev] of [
      [3n, head.hash], // a fork: a second entry for seq 3
      [5n, head.hash], // a gap
      [4n, "sha256:" + "0".repeat(64)], // a link to the wrong entry
    ] as const) {
      const fields = { ...row, seq, prev_hash: prev };
      const err = await db
        .insertInto("audit_log")
        .values({ ...fields, data: "{}", hash: entryHash(fields), idempotency_key: null })
        .execute()
        .catch((e: unknown) => e);
      expect(["23000", "23505"]).toContain(sqlState(err));
    }
    expect(await readHead(db, "t-fork")).toEqual(head);
    expect((await verifyAuditChain(db, "t-fork")).ok).toBe(true);
  });
});

describe(`audit chain under concurrent appends (${backend})`, () => {
  const TENANTS = 5;
  const EVENTS = 10_000;
  const APPENDERS = 50;

  it(`${EVENTS} events from ${APPENDERS} concurrent appenders over ${TENANTS} tenants verify clean and contiguous`, async () => {
    // PostgreSQL: a pool wide enough for real parallel transactions. PGlite has one connection,
    // so the same appenders are serialized by its dialect.
    const pool: Database | undefined = database.url ? createDatabase({ url: database.url, poolMax: 20 }) : undefined;
    const handle = pool ? pool.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA) : db;
    try {
      let next = 0;
      const started = performance.now();
      const appender = async (): Promise<void> => {
        for (let i = next++; i < EVENTS; i = next++) {
          const tenant = `t-conc-${i % TENANTS}`;
          const event = { eventType: "tool_call_succeeded", traceId: `trace-${i}`, data: { i } };
          // PGlite answers without returning to the event loop; yield now and then so vitest's
          // worker can still talk to its parent during this long test.
          if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
          // Every fourth append runs inside a caller's transaction, as budgets and policies do.
          if (i % 4 === 0) await withTransaction(handle, (trx) => appendAudit(trx, tenant, event));
          else await appendAudit(handle, tenant, event);
        }
      };
      await Promise.all(Array.from({ length: APPENDERS }, appender));
      const seconds = (performance.now() - started) / 1000;
      console.info(`audit: ${EVENTS} appends by ${APPENDERS} appenders on ${backend} in ${seconds.toFixed(2)} s (${Math.round(EVENTS / seconds)}/s)`);
    } finally {
      await pool?.close();
    }
    const perTenant = EVENTS / TENANTS;
    for (let t = 0; t < TENANTS; t++) {
      const tenant = `t-conc-${t}`;
      const verification = await verifyAuditChain(db, tenant);
      expect(verification).toMatchObject({ ok: true, failures: [], checkedCount: perTenant, headSeq: BigInt(perTenant) });
      const { rows } = await sql<{ n: bigint; min: bigint; max: bigint; distinct_i: bigint }>`
        select count(*) as n, min(seq) as min, max(seq) as max, count(distinct data->>'i') as distinct_i
        from ${sql.table(`${GOVERNANCE_SCHEMA}.audit_log`)} where tenant_id = ${tenant}`.execute(db);
      expect(rows[0]).toEqual({ n: BigInt(perTenant), min: 1n, max: BigInt(perTenant), distinct_i: BigInt(perTenant) });
    }
  }, 600_000);
});
