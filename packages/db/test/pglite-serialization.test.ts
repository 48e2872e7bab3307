import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { FIXTURE_SCHEMA, type FixtureDB } from "./fixture.js";
import { useFreshDatabase } from "./support.js";

// PGlite has one session, so these pin that callers queue for it instead of interleaving.
// (On PostgreSQL each transaction has its own connection; see transaction.test.ts.)
describe.runIf(inject("backends").includes("pglite"))("PGlite single-connection serialization", () => {
  const db = useFreshDatabase("pglite");

  it("runs 50 concurrent read-modify-write transactions without losing one", async () => {
    const store = db().forSchema<FixtureDB>(FIXTURE_SCHEMA);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.transaction().execute(async (trx) => {
          const { value } = await trx.selectFrom("counter").select("value").where("id", "=", "main").executeTakeFirstOrThrow();
          // Yield mid-transaction so any interleaving caller would get its turn here.
          await sleep(i % 3);
          await trx.updateTable("counter").set({ value: value + 1n }).where("id", "=", "main").execute();
        }),
      ),
    );
    const { value } = await store.selectFrom("counter").select("value").where("id", "=", "main").executeTakeFirstOrThrow();
    expect(value).toBe(50n);
  });

  it("keeps a standalone query out of another caller's open transaction", async () => {
    const store = db().forSchema<FixtureDB>(FIXTURE_SCHEMA);
    let inserted!: () => void;
    const insertedSignal = new Promise<void>((resolve) => (inserted = resolve));
    const rolledBack = store
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto("sample").values({ count: -1 }).execute();
        inserted();
        await sleep(50);
        throw new Error("roll back");
      })
      .catch(() => "rolled back");

    await insertedSignal;
    // Issued while the transaction is open: it must wait, and so must not see the uncommitted row.
    const { rows } = await sql<{ n: bigint }>`select count(*) as n from fixture.sample where count = -1`.execute(db().kysely);
    expect(rows[0]?.n).toBe(0n);
    expect(await rolledBack).toBe("rolled back");
  });
});
