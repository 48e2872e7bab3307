/**
 * Tampering with the audit log as a superuser (who the append-only trigger lets through), each
 * case in a fresh database, and the first broken seq that verification must then name. The
 * application-role case checks that the trigger stops everyone else.
 */
import { afterEach, describe, expect, it } from "vitest";
import { sql, type Kysely } from "kysely";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import { entryHash } from "../src/store/audit-chain.js";
import { readHead, verifyAuditChain } from "../src/store/audit.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { appendMany, sqlState, superuser, withTriggersDisabled } from "./audit-support.js";

const backend = testBackendFromEnv();
const TENANT = "t-tamper";
const OTHER = "t-bystander";
const LOG = sql.table(`${GOVERNANCE_SCHEMA}.audit_log`);
const HEADS = sql.table(`${GOVERNANCE_SCHEMA}.audit_heads`);

let opened: { database: FreshDatabase; admin: ReturnType<typeof superuser> } | undefined;
afterEach(async () => {
  await opened?.admin.close();
  await opened?.database.drop();
  opened = undefined;
});

/** A fresh database with 10 entries for TENANT and 4 for OTHER, and a superuser handle on it. */
async function chainOfTen(): Promise<{ db: Kysely<GovernanceDatabase>; admin: Kysely<any> }> {
  const database = await freshDatabase("governance");
  const admin = superuser(database);
  opened = { database, admin };
  const db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  await appendMany(db, TENANT, 10);
  await appendMany(db, OTHER, 4);
  expect((await verifyAuditChain(db, TENANT)).ok).toBe(true);
  return { db, admin: admin.kysely };
}

async function expectBroken(db: Kysely<GovernanceDatabase>, firstBrokenSeq: bigint, failures: string[]): Promise<void> {
  const result = await verifyAuditChain(db, TENANT);
  expect(result).toMatchObject({ ok: false, firstBrokenSeq, failures });
  // Tampering with one tenant's chain says nothing about another's.
  expect(await verifyAuditChain(db, OTHER)).toMatchObject({ ok: true, headSeq: 4n });
}

/** A row for `seq` that hashes correctly (what a forger who knows the format writes). */
function forgedRow(seq: bigint, prevHash: string | null) {
  const fields = {
    tenant_id: TENANT,
    seq,
    prev_hash: prevHash,
    event_type: "config_change",
    workspace_id: null,
    trace_id: null,
    actor: "attacker",
    data: { action: "nothing to see" },
    created_at: new Date(),
  };
  return { ...fields, hash: entryHash(fields) };
}

async function insertRow(trx: Kysely<any>, row: ReturnType<typeof forgedRow>): Promise<void> {
  await sql`
    insert into ${LOG} (tenant_id, seq, prev_hash, hash, event_type, workspace_id, trace_id, actor, data, created_at)
    values (${row.tenant_id}, ${row.seq}, ${row.prev_hash}, ${row.hash}, ${row.event_type}, ${row.workspace_id},
            ${row.trace_id}, ${row.actor}, ${JSON.stringify(row.data)}::jsonb, ${row.created_at})
  `.execute(trx);
}

async function storedHash(admin: Kysely<any>, seq: number): Promise<string> {
  const { rows } = await sql<{ hash: string }>`select hash from ${LOG} where tenant_id = ${TENANT} and seq = ${seq}`.execute(admin);
  return rows[0]!.hash;
}

describe(`audit chain tampered by a superuser (${backend})`, () => {
  it.each([
    ["data", sql`data = '{"i": 4, "note": "rewritten"}'::jsonb`],
    ["event_type", sql`event_type = 'auth_success'`],
    ["actor", sql`actor = 'someone-else'`],
    ["workspace_id", sql`workspace_id = 'ws-other'`],
    ["trace_id", sql`trace_id = null`],
    ["created_at", sql`created_at = created_at - interval '1 day'`],
  ])("an updated %s: seq 4 hash mismatch", async (_column, assignment) => {
    const { db, admin } = await chainOfTen();
    await sql`update ${LOG} set ${assignment} where tenant_id = ${TENANT} and seq = 4`.execute(admin);
    await expectBroken(db, 4n, ["seq_4_hash_mismatch"]);
  });

  it("an updated prev_hash: seq 4 hash and link mismatch", async () => {
    const { db, admin } = await chainOfTen();
    await sql`update ${LOG} set prev_hash = ${"sha256:" + "1".repeat(64)} where tenant_id = ${TENANT} and seq = 4`.execute(admin);
    await expectBroken(db, 4n, ["seq_4_hash_mismatch", "seq_4_prev_hash_mismatch"]);
  });

  it("an updated stored hash: seq 4 hash mismatch, and seq 5 no longer links to it", async () => {
    const { db, admin } = await chainOfTen();
    await sql`update ${LOG} set hash = ${"sha256:" + "2".repeat(64)} where tenant_id = ${TENANT} and seq = 4`.execute(admin);
    await expectBroken(db, 4n, ["seq_4_hash_mismatch", "seq_5_prev_hash_mismatch"]);
  });

  it("a deleted row in the middle: seq 4 missing", async () => {
    const { db, admin } = await chainOfTen();
    await sql`delete from ${LOG} where tenant_id = ${TENANT} and seq = 4`.execute(admin);
    await expectBroken(db, 4n, ["seq_4_missing"]);
  });

  it("the deleted newest rows: the head still records seq 10", async () => {
    const { db, admin } = await chainOfTen();
    await sql`delete from ${LOG} where tenant_id = ${TENANT} and seq >= 9`.execute(admin);
    await expectBroken(db, 9n, ["seq_9_missing", "seq_10_missing"]);
  });

  it("two rows' contents swapped: seq 3 hash mismatch (and seq 7)", async () => {
    const { db, admin } = await chainOfTen();
    await sql`
      update ${LOG} as a set event_type = b.event_type, data = b.data, trace_id = b.trace_id, workspace_id = b.workspace_id
      from ${LOG} as b
      where a.tenant_id = ${TENANT} and b.tenant_id = ${TENANT} and ((a.seq = 3 and b.seq = 7) or (a.seq = 7 and b.seq = 3))
    `.execute(admin);
    await expectBroken(db, 3n, ["seq_3_hash_mismatch", "seq_7_hash_mismatch"]);
  });

  it("two whole rows swapped in position: seq 3 is the first broken link", async () => {
    const { db, admin } = await chainOfTen();
    // Through a free seq, since (tenant_id, seq) is the primary key.
    await admin.transaction().execute(async (trx) => {
      await sql`update ${LOG} set seq = 1003 where tenant_id = ${TENANT} and seq = 3`.execute(trx);
      await sql`update ${LOG} set seq = 3 where tenant_id = ${TENANT} and seq = 7`.execute(trx);
      await sql`update ${LOG} set seq = 7 where tenant_id = ${TENANT} and seq = 1003`.execute(trx);
    });
    const result = await verifyAuditChain(db, TENANT);
    expect(result).toMatchObject({ ok: false, firstBrokenSeq: 3n });
    expect(result.failures).toEqual(expect.arrayContaining(["seq_3_hash_mismatch", "seq_3_prev_hash_mismatch", "seq_7_hash_mismatch"]));
  });

  it("a forged row appended through the chain trigger with a made-up hash: seq 11 hash mismatch", async () => {
    const { db, admin } = await chainOfTen();
    const head = await readHead(db, TENANT);
    await insertRow(admin, { ...forgedRow(11n, head.hash), hash: "sha256:" + "3".repeat(64) });
    await expectBroken(db, 11n, ["seq_11_hash_mismatch"]);
  });

  it("a forged row appended with the trigger disabled: seq 11 lies beyond the head", async () => {
    const { db, admin } = await chainOfTen();
    const head = await readHead(db, TENANT);
    await withTriggersDisabled(admin, (trx) => insertRow(trx, forgedRow(11n, head.hash)));
    await expectBroken(db, 11n, ["seq_11_forged"]);
  });

  it("a row replaced by a forged one with a recomputed hash: seq 4 forged", async () => {
    const { db, admin } = await chainOfTen();
    const prev = await storedHash(admin, 3);
    await withTriggersDisabled(admin, async (trx) => {
      await sql`delete from ${LOG} where tenant_id = ${TENANT} and seq = 4`.execute(trx);
      await insertRow(trx, forgedRow(4n, prev));
    });
    await expectBroken(db, 4n, ["seq_4_forged", "seq_5_prev_hash_mismatch"]);
  });

  it("the newest row replaced with a recomputed hash: seq 10 does not match the head", async () => {
    const { db, admin } = await chainOfTen();
    const prev = await storedHash(admin, 9);
    await withTriggersDisabled(admin, async (trx) => {
      await sql`delete from ${LOG} where tenant_id = ${TENANT} and seq = 10`.execute(trx);
      await insertRow(trx, forgedRow(10n, prev));
    });
    await expectBroken(db, 10n, ["seq_10_forged"]);
  });

  it("a deleted head: every entry lies beyond it", async () => {
    const { db, admin } = await chainOfTen();
    await sql`delete from ${HEADS} where tenant_id = ${TENANT}`.execute(admin);
    const result = await verifyAuditChain(db, TENANT);
    expect(result).toMatchObject({ ok: false, firstBrokenSeq: 1n, headSeq: 0n });
    expect(result.failures[0]).toBe("seq_1_forged");
  });
});

describe(`audit log refuses changes by the application role (${backend})`, () => {
  // PGlite runs one session as a superuser, whom the trigger exempts by design; there is no
  // application role to test there.
  const reason = "PGlite has a single superuser session, which the append-only trigger exempts";
  if (backend === "pglite") console.info(`skipped: the application-role test (${reason})`);

  it.skipIf(backend === "pglite")("UPDATE, DELETE and TRUNCATE fail with the trigger's error; heads cannot be moved", async () => {
    const { db } = await chainOfTen();
    const app = db as Kysely<any>;
    const { rows } = await sql<{ rolsuper: boolean }>`select rolsuper from pg_roles where rolname = current_user`.execute(app);
    expect(rows[0]?.rolsuper).toBe(false);

    const attempts: [string, () => Promise<unknown>][] = [
      ["UPDATE", () => sql`update ${LOG} set actor = 'x' where tenant_id = ${TENANT} and seq = 2`.execute(app)],
      ["DELETE", () => sql`delete from ${LOG} where tenant_id = ${TENANT} and seq = 2`.execute(app)],
      ["TRUNCATE", () => sql`truncate ${LOG}`.execute(app)],
    ];
    for (const [op, attempt] of attempts) {
      const err = await attempt().catch((e: unknown) => e);
      expect(sqlState(err), op).toBe("42501");
      expect(String((err as Error).message)).toContain(`audit_log is append-only: ${op} refused for role clasper`);
    }
    for (const attempt of [
      () => sql`update ${HEADS} set seq = 3 where tenant_id = ${TENANT}`.execute(app),
      () => sql`delete from ${HEADS} where tenant_id = ${TENANT}`.execute(app),
      () => sql`truncate ${HEADS}`.execute(app),
      () => sql`insert into ${HEADS} (tenant_id, seq, hash) values ('t-new', 7, null)`.execute(app),
    ]) {
      expect(sqlState(await attempt().catch((e: unknown) => e))).toBe("42501");
    }
    expect(await verifyAuditChain(db, TENANT)).toMatchObject({ ok: true, headSeq: 10n, checkedCount: 10 });
  });
});
