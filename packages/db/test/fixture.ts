import { sql, type ColumnType, type Generated, type Kysely, type Migration } from "kysely";
import type { Database } from "../src/index.js";
import { migrateSchema } from "../src/index.js";

/** The schema every test database starts with (the template's content). */
export const FIXTURE_SCHEMA = "fixture";

export const fixtureMigrations: Record<string, Migration> = {
  "20250101000000_create_sample": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("sample")
        .addColumn("id", "serial", (c) => c.primaryKey())
        .addColumn("amount_micros", "int8")
        .addColumn("ratio", "numeric(20, 6)")
        .addColumn("count", "int4")
        .addColumn("at", "timestamptz")
        .addColumn("day", "date")
        .addColumn("doc", "jsonb")
        .addColumn("flag", "boolean")
        .addColumn("amounts", sql`int8[]`)
        .execute();
    },
  },
  "20250101000100_create_counter": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("counter")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("value", "int8", (c) => c.notNull())
        .execute();
      await db.insertInto("counter").values({ id: "main", value: 0 }).execute();
    },
  },
};

export async function migrateFixture(db: Database): Promise<void> {
  await migrateSchema(db, FIXTURE_SCHEMA, fixtureMigrations);
}

export interface FixtureDB {
  sample: {
    id: Generated<number>;
    amount_micros: bigint | null;
    ratio: string | null;
    count: number | null;
    at: Date | null;
    day: string | null;
    /** Read as the parsed value; written as JSON text (see types.test.ts). */
    doc: ColumnType<unknown, string | null, string | null>;
    flag: boolean | null;
    amounts: bigint[] | null;
  };
  counter: { id: string; value: bigint };
}

export const TEMPLATE = "clasper_db";

