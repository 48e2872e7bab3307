import { randomBytes } from "node:crypto";
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
const nothing: Migration = {
  async up() {},
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

  it("builds a template per migration version and reuses each while its migrations are unchanged", async () => {
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
    // Templates are kept per version across runs: a migration only this run has makes its versions new.
    const v1 = { "20250401000000_create_note": createNote, [`20250401000001_run_${randomBytes(6).toString("hex")}`]: nothing };
    const v2 = { ...v1, "20250401000100_add_note_author": addNoteAuthor };
    const columnsOfFresh = async () => {
      const db = await freshDatabase(name, { backend });
      try {
        return await columnsOf(db, "note");
      } finally {
        await db.drop();
      }
    };

    await setup(v1);
    expect(migrateRuns).toBe(1);
    await setup(v1);
    expect(migrateRuns).toBe(1); // unchanged: reused
    expect(await columnsOfFresh()).toEqual(["body"]);
    await setup(v2);
    expect(migrateRuns).toBe(2); // changed: a template of its own
    expect(await columnsOfFresh()).toEqual(["body", "author"]);
    await setup(v1);
    expect(migrateRuns).toBe(2); // the first version's template is still there, and copies come from it again
    expect(await columnsOfFresh()).toEqual(["body"]);
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
