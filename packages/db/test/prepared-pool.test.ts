import { sql } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { createDatabase, PLAN_PER_CALL, type Database } from "../src/index.js";
import { testDatabaseUrl } from "../src/testing.js";

async function preparedOnConnection(db: Database): Promise<string[]> {
  const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements order by prepare_time`.execute(db.kysely);
  return rows.map((row) => row.statement);
}

describe.runIf(inject("backends").includes("postgres"))("prepared statements on PostgreSQL", () => {
  it("prepares each parameterised text once per connection and reuses it", async () => {
    const db = createDatabase({ url: testDatabaseUrl(), poolMax: 1 });
    try {
      for (const n of [1, 2, 3]) {
        const { rows } = await sql<{ doubled: number }>`select ${n}::int4 * 2 as doubled`.execute(db.kysely);
        expect(rows).toEqual([{ doubled: n * 2 }]);
      }
      await sql`select 1 as unparameterised`.execute(db.kysely);
      const prepared = await preparedOnConnection(db);
      // The inspection query has no parameters either, so only the doubling statement is named.
      expect(prepared).toEqual(["select $1::int4 * 2 as doubled"]);
    } finally {
      await db.close();
    }
  });

  it("runs texts past the cap unnamed, with the same results", async () => {
    const db = createDatabase({ url: testDatabaseUrl(), poolMax: 1, maxPreparedStatements: 1 });
    try {
      const first = await sql<{ v: string }>`select ${"a"}::text as v`.execute(db.kysely);
      const second = await sql<{ w: string }>`select ${"b"}::text as w`.execute(db.kysely);
      expect(first.rows).toEqual([{ v: "a" }]);
      expect(second.rows).toEqual([{ w: "b" }]);
      expect(await preparedOnConnection(db)).toEqual(["select $1::text as v"]);
    } finally {
      await db.close();
    }
  });

  it("keeps a text marked PLAN_PER_CALL unnamed, without using up the cap", async () => {
    const db = createDatabase({ url: testDatabaseUrl(), poolMax: 1, maxPreparedStatements: 1 });
    try {
      for (const n of [1, 2]) {
        const { rows } = await sql<{ v: number }>`select ${sql.raw(PLAN_PER_CALL)} ${n}::int4 as v`.execute(db.kysely);
        expect(rows).toEqual([{ v: n }]);
      }
      await sql`select ${3}::int4 as named`.execute(db.kysely);
      expect(await preparedOnConnection(db)).toEqual(["select $1::int4 as named"]);
    } finally {
      await db.close();
    }
  });

  it("keeps every statement unnamed when disabled", async () => {
    const db = createDatabase({ url: testDatabaseUrl(), poolMax: 1, maxPreparedStatements: 0 });
    try {
      await sql`select ${1}::int4 as one`.execute(db.kysely);
      expect(await preparedOnConnection(db)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it("reports a failing prepared statement as the query's error and stays usable", async () => {
    const db = createDatabase({ url: testDatabaseUrl(), poolMax: 1 });
    try {
      await expect(sql`select ${"x"}::int4 as broken`.execute(db.kysely)).rejects.toMatchObject({ code: "22P02" });
      const { rows } = await sql<{ ok: number }>`select ${7}::int4 as ok`.execute(db.kysely);
      expect(rows).toEqual([{ ok: 7 }]);
    } finally {
      await db.close();
    }
  });
});

describe.runIf(inject("backends").includes("postgres"))("session settings on PostgreSQL", () => {
  it("turns JIT compilation off for pooled connections", async () => {
    const db = createDatabase({ url: testDatabaseUrl(), poolMax: 1 });
    try {
      const { rows } = await sql<{ jit: string }>`show jit`.execute(db.kysely);
      expect(rows).toEqual([{ jit: "off" }]);
    } finally {
      await db.close();
    }
  });
});
