import { sql, type Kysely, type Migration } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { migrateSchema, type Database } from "../src/index.js";
import { freshDatabase, isPostgresReachable, probePostgres, setupTemplate, type TestBackend } from "../src/testing.js";
import { FIXTURE_SCHEMA, fixtureMigrations, TEMPLATE } from "./fixture.js";

const createNote: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable("note").addColumn("body", "text").execute();
  },
};
const addNoteAuthor: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable("note").addColumn("author", "text").execute();
  },
};

async function columnsOf(db: Database, table: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select column_name as name from information_schema.columns
    where table_schema = 'notes' and table_name = ${table} order by ordinal_position
  `.execute(db.kysely);
  return rows.map((r) => r.name);
}

describe.each(inject("backends"))("test database helpers on %s", (backend: TestBackend) => {
  it("gives each caller an independent, already-migrated copy of the template", async () => {
    const [one, two] = await Promise.all([
      freshDatabase(TEMPLATE, { backend }),
      freshDatabase(TEMPLATE, { backend }),
    ]);
    try {
      expect(await migrateSchema(one, FIXTURE_SCHEMA, fixtureMigrations)).toEqual([]);
      await sql`update fixture.counter set value = 7`.execute(one.kysely);
      const { rows } = await sql<{ value: bigint }>`select value from fixture.counter`.execute(two.kysely);
      expect(rows).toEqual([{ value: 0n }]);
    } finally {
      await Promise.all([one.drop(), two.drop()]);
    }
  });

  it("rebuilds the template only when its migrations change", async () => {
    const name = `clasper_db_rebuild_${backend}`;
    let migrateRuns = 0;
    const setup = (migrations: Record<string, Migration>) =>
      setupTemplate({
        name,
        backends: [backend],
        migrations: { notes: migrations },
        migrate: async (db) => {
          migrateRuns++;
          await migrateSchema(db, "notes", migrations);
        },
      });
    const v1 = { "20250401000000_create_note": createNote };
    const v2 = { ...v1, "20250401000100_add_note_author": addNoteAuthor };

    await setup(v1);
    const afterFirst = migrateRuns;
    await setup(v1);
    expect(migrateRuns).toBe(afterFirst); // unchanged hash: reused
    await setup(v2);
    expect(migrateRuns).toBe(afterFirst + 1); // changed hash: rebuilt

    const db = await freshDatabase(name, { backend });
    try {
      expect(await columnsOf(db, "note")).toEqual(["body", "author"]);
    } finally {
      await db.drop();
    }
  });

  it.runIf(backend === "postgres")("drops the copy's database", async () => {
    const db = await freshDatabase(TEMPLATE, { backend });
    const admin = await freshDatabase(TEMPLATE, { backend });
    try {
      await db.drop();
      const { rows } = await sql`select 1 from pg_database where datname = ${db.name}`.execute(admin.kysely);
      expect(rows).toEqual([]);
    } finally {
      await admin.drop();
    }
  });

  it("refuses a template that was never set up", async () => {
    await expect(freshDatabase("never_set_up", { backend })).rejects.toThrow(/setupTemplate/);
  });
});

describe("probePostgres", () => {
  it("reports why an unreachable server cannot be used", async () => {
    const probe = await probePostgres("postgres://nobody:secret@127.0.0.1:1/none", 1000);
    expect(probe.reachable).toBe(false);
    expect(!probe.reachable && probe.reason).toMatch(/127\.0\.0\.1:1.*ECONNREFUSED/);
    expect(!probe.reachable && probe.reason).not.toContain("secret");
    expect(await isPostgresReachable("postgres://nobody:secret@127.0.0.1:1/none", 1000)).toBe(false);
  });
});
