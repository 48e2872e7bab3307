import { setupTemplate } from "@clasper/db/testing";
import { migrateAll, SERVICE_MODULES } from "../../src/index.js";

/** Migrates the `clasper` template database once per run (PostgreSQL), reused by every test file. */
export default async function setup(): Promise<() => Promise<void>> {
  const migrations = Object.fromEntries(
    Object.values(SERVICE_MODULES)
      .filter((m) => m.schema)
      .map((m) => [m.schema!, m.migrations]),
  );
  return setupTemplate({ name: "clasper", migrate: async (db) => void (await migrateAll(db)), migrations });
}
