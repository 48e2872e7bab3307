import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql, type Kysely, type Migration } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { createDatabase, migrateSchema, MigrationError, type Database } from "../src/index.js";
import { useFreshDatabase } from "./support.js";

function createTable(table: string): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.createTable(table).addColumn("id", "int4", (c) => c.primaryKey()).execute();
    },
  };
}

const v1 = {
  "20250301000000_create_first": createTable("first"),
  "20250301000100_create_second": createTable("second"),
};
const v2 = { ...v1, "20250302000000_create_third": createTable("third") };

async function tablesIn(db: Database, schema: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = ${schema} and table_name not like 'kysely_%' order by 1
  `.execute(db.kysely);
  return rows.map((r) => r.name);
}

describe.each(inject("backends"))("migrateSchema on %s", (backend) => {
  const db = useFreshDatabase(backend);

  it("applies pending migrations once and only the new ones later", async () => {
    expect(await migrateSchema(db(), "mig_idem", v1)).toEqual(Object.keys(v1));
    expect(await migrateSchema(db(), "mig_idem", v1)).toEqual([]);
    expect(await migrateSchema(db(), "mig_idem", v2)).toEqual(["20250302000000_create_third"]);
    expect(await tablesIn(db(), "mig_idem")).toEqual(["first", "second", "third"]);
  });

  it("names the failed migration and applies none of the batch", async () => {
    const broken = {
      ...v1,
      "20250303000000_broken": {
        async up(db: Kysely<any>) {
          await sql`select * from table_that_does_not_exist`.execute(db);
        },
      },
    };
    const error = await migrateSchema(db(), "mig_fail", broken).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).migrationName).toBe("20250303000000_broken");
    expect((error as Error).message).toMatch(/migration "20250303000000_broken" for schema "mig_fail" failed: .*table_that_does_not_exist/);
    // The batch ran in one transaction, so the two good migrations were rolled back with it.
    expect(await tablesIn(db(), "mig_fail")).toEqual([]);
  });

  it("rejects migration names that do not sort by timestamp", async () => {
    await expect(migrateSchema(db(), "mig_names", { create_first: createTable("x") })).rejects.toThrow(
      /<YYYYMMDDHHmmss>_<what>/,
    );
  });

  it("lets two handles migrate the same schema at once", async () => {
    const [first, second, cleanup] = await twoHandles(db(), backend);
    try {
      const results = await Promise.all([
        migrateSchema(first, "mig_race", v2),
        migrateSchema(second, "mig_race", v2),
      ]);
      // One caller applied everything, the other found it done; nothing ran twice.
      expect(results.flat().sort()).toEqual(Object.keys(v2));
      expect(await tablesIn(first, "mig_race")).toEqual(["first", "second", "third"]);
    } finally {
      await cleanup();
    }
  });
});

/**
 * PostgreSQL: two independent pools on the fresh database. PGlite: two handles opened on one data
 * directory, which share one instance (as services in one process do).
 */
async function twoHandles(
  fresh: { url: string | undefined },
  backend: string,
): Promise<[Database, Database, () => Promise<void>]> {
  if (backend === "postgres") {
    const a = createDatabase({ url: fresh.url });
    const b = createDatabase({ url: fresh.url });
    return [a, b, async () => void (await Promise.all([a.close(), b.close()]))];
  }
  const dir = await mkdtemp(join(tmpdir(), "clasper-db-test-"));
  const a = createDatabase({ dataDir: dir });
  const b = createDatabase({ dataDir: dir });
  return [
    a,
    b,
    async () => {
      await Promise.all([a.close(), b.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  ];
}
