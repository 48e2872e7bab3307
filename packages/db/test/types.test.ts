import { sql } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { FIXTURE_SCHEMA, type FixtureDB } from "./fixture.js";
import { useFreshDatabase } from "./support.js";

// Beyond Number.MAX_SAFE_INTEGER: a lossy int8 → number conversion would change it.
const BIG_MICROS = 9_007_199_254_740_993n;

describe.each(inject("backends"))("type parity on %s", (backend) => {
  const db = useFreshDatabase(backend);

  it("returns the same JS types for each column type", async () => {
    const store = db().forSchema<FixtureDB>(FIXTURE_SCHEMA);
    const at = new Date("2025-03-04T05:06:07.891Z");
    const doc = { tags: ["a", "b"], nested: { n: 1.5, nothing: null } };
    const { id } = await store
      .insertInto("sample")
      .values({
        amount_micros: BIG_MICROS,
        ratio: "12345.5",
        count: 42,
        at,
        day: "2024-02-29",
        // jsonb parameters are passed as JSON text: pg would send a JS array as a Postgres array.
        doc: JSON.stringify(doc),
        flag: true,
        amounts: [1n, BIG_MICROS],
      })
      .returning("id")
      .executeTakeFirstOrThrow();

    const row = await store.selectFrom("sample").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

    expect(row).toEqual({
      id,
      amount_micros: BIG_MICROS,
      ratio: "12345.500000",
      count: 42,
      at,
      day: "2024-02-29",
      doc,
      flag: true,
      amounts: [1n, BIG_MICROS],
    });
    expect(typeof row.id).toBe("number");
    expect(row.at).toBeInstanceOf(Date);
  });

  it("returns bigint for int8 aggregates and string for numeric ones", async () => {
    const { rows } = await sql<{ n: unknown; total: unknown; nulls: unknown }>`
      select count(*) as n, sum(amount_micros) as total, null::int8 as nulls
      from ${sql.table(`${FIXTURE_SCHEMA}.sample`)}
    `.execute(db().kysely);
    // sum(int8) is numeric in PostgreSQL, so it stays a string: convert with BigInt() when needed.
    expect(rows[0]).toEqual({ n: 1n, total: BIG_MICROS.toString(), nulls: null });
  });
});
