import { DEFAULT_DATA_DIR, type Database, type DatabaseOptions } from "./database.js";
import { createPgliteDatabase } from "./pglite.js";
import { createPostgresDatabase } from "./postgres.js";

/**
 * Opens the service database: a pooled PostgreSQL connection when `url` is set, otherwise an
 * embedded PGlite persisted at `dataDir`. Both return the same JS types for the same columns.
 */
export function createDatabase(options: DatabaseOptions = {}): Database {
  if (options.url !== undefined) return createPostgresDatabase(options.url, options);
  return createPgliteDatabase(options.dataDir ?? DEFAULT_DATA_DIR);
}
