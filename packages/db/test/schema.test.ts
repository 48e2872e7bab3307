import type { Kysely, Migration } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { migrateSchema } from "../src/index.js";
import { useFreshDatabase } from "./support.js";

const itemMigrations: Record<string, Migration> = {
  "20250201000000_create_item": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("item")
        .addColumn("name", "text", (c) => c.primaryKey())
        .execute();
    },
  },
};

interface ItemDB {
  item: { name: string };
}

describe.each(inject("backends"))("schema isolation on %s", (backend) => {
  const db = useFreshDatabase(backend);

  it("keeps same-named tables and migration history apart per schema", async () => {
    expect(await migrateSchema(db(), "svc_a", itemMigrations)).toEqual(["20250201000000_create_item"]);
    expect(await migrateSchema(db(), "svc_b", itemMigrations)).toEqual(["20250201000000_create_item"]);

    const a = db().forSchema<ItemDB>("svc_a");
    const b = db().forSchema<ItemDB>("svc_b");
    await a.insertInto("item").values({ name: "only-in-a" }).execute();
    await b.insertInto("item").values([{ name: "b1" }, { name: "b2" }]).execute();

    expect(await a.selectFrom("item").select("name").execute()).toEqual([{ name: "only-in-a" }]);
    expect(await b.selectFrom("item").select("name").orderBy("name").execute()).toEqual([
      { name: "b1" },
      { name: "b2" },
    ]);
  });
});
