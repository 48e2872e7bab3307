import { migrateSchema } from "@clasper/db";
import { setupTemplate } from "@clasper/db/testing";
import { migrations } from "../migrations/index.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";

/** The governance schema, migrated once per run into the template every test file copies. */
export default async function setup(): Promise<() => Promise<void>> {
  return setupTemplate({
    name: "governance",
    migrate: async (db) => void (await migrateSchema(db, GOVERNANCE_SCHEMA, migrations)),
    migrations: { [GOVERNANCE_SCHEMA]: migrations },
  });
}
