import { commonConfigShape, parseConfig } from "@clasper/core";
import { createDatabase } from "@clasper/db";
import { migrateAll } from "./serve-all.js";

/** `clasper migrate`: what the Helm pre-install Job runs. */
export async function migrateCommand(): Promise<void> {
  const config = parseConfig(commonConfigShape);
  const db = await createDatabase({ url: config.DATABASE_URL, dataDir: `${config.CLASPER_DATA_DIR}/pgdata`, poolMax: 2 });
  try {
    const applied = await migrateAll(db);
    process.stdout.write(applied.length === 0 ? "Database is up to date.\n" : `Applied:\n${applied.map((m) => `  ${m}`).join("\n")}\n`);
  } finally {
    await db.close();
  }
}
