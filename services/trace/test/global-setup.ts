import { migrateSchema } from "@clasper/db";
import { setupTemplate } from "@clasper/db/testing";
import { migrations } from "../migrations/index.js";
import { TRACE_SCHEMA } from "../src/server.js";

/** The trace schema, migrated once per run into the template every test file copies. */
export default async function setup(): Promise<() => Promise<void>> {
  return setupTemplate({
    name: "trace",
    migrate: async (db) => void (await migrateSchema(db, TRACE_SCHEMA, migrations)),
    migrations: { [TRACE_SCHEMA]: migrations },
  });
}
