import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely } from "kysely";
import { PGliteDialect } from "kysely-pglite-dialect";
import { wrapKysely, type Database } from "./database.js";
import { pgliteParsers } from "./types.js";

/*
 * PGlite is one Postgres backend with one session: two transactions must never interleave on it,
 * or the second caller's statements would run inside the first caller's transaction.
 * kysely-pglite-dialect 1.3.1 (read in node_modules, checked against pglite 0.4.6) serializes
 * correctly: `acquireConnection` hands out its single connection and queues every other caller
 * until `releaseConnection`, and kysely holds that connection for a whole `transaction()` and for
 * each standalone query. So we use it rather than our own dialect. Its known gaps: no
 * savepoints (kysely's `startTransaction().savepoint()`), and `setAccessMode` is ignored.
 * test/pglite-serialization.test.ts pins the behaviour we rely on.
 *
 * Corollary: code holding a transaction must not query through the outer handle while it waits
 * on that transaction; on PGlite that waits for itself forever (on PostgreSQL it would merely use a
 * second connection and not see the transaction's writes).
 */

export const MEMORY_DATA_DIR = "memory://";

interface SharedInstance {
  kysely: Kysely<any>;
  refs: number;
}

/**
 * One PGlite per data directory per process. Two PGlite instances on one directory would corrupt
 * it, and two separate dialects would each have their own queue and interleave; so services
 * started in one process (dev mode) that open the same directory share one instance and one
 * queue, and the last `close()` shuts it down.
 */
const sharedByDir = new Map<string, SharedInstance>();

export function createPgliteDatabase(dataDir: string): Database {
  if (dataDir === MEMORY_DATA_DIR) return createMemoryPglite().database;
  const key = resolve(dataDir);
  let shared = sharedByDir.get(key);
  if (!shared) {
    mkdirSync(key, { recursive: true });
    const kysely = pgliteKysely(new PGlite(key, { parsers: pgliteParsers }));
    shared = { kysely, refs: 0 };
    sharedByDir.set(key, shared);
  }
  const instance = shared;
  instance.refs += 1;
  return wrapKysely("pglite", instance.kysely, async () => {
    instance.refs -= 1;
    if (instance.refs === 0) {
      sharedByDir.delete(key);
      await instance.kysely.destroy();
    }
  });
}

/**
 * An in-memory PGlite, optionally started from a `dumpDataDir()` tarball. The raw instance is
 * returned for the test helpers, which dump it; everything else goes through `database`.
 */
export function createMemoryPglite(dump?: Blob): { database: Database; pglite: PGlite } {
  const options = { parsers: pgliteParsers, ...(dump ? { loadDataDir: dump } : {}) };
  const pglite = new PGlite(MEMORY_DATA_DIR, options);
  return { database: wrapKysely("pglite", pgliteKysely(pglite)), pglite };
}

function pgliteKysely(pglite: PGlite): Kysely<any> {
  return new Kysely<any>({ dialect: new PGliteDialect(pglite) });
}
