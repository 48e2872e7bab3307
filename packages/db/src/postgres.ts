import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { wrapKysely, type Database, type DatabaseOptions } from "./database.js";
import { preparingPool } from "./prepared-pool.js";
import { pgTypes } from "./types.js";

const DEFAULT_POOL_MAX = 10;

export function createPostgresDatabase(url: string, options: DatabaseOptions): Database {
  const protocol = safeProtocol(url);
  if (protocol !== "postgres:" && protocol !== "postgresql:") {
    throw new Error(`database url must start with postgres:// or postgresql://, got "${protocol ?? url}"`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax ?? DEFAULT_POOL_MAX,
    types: pgTypes,
    // Clasper's statements are short indexed lookups. JIT compilation is chosen by estimated cost,
    // and the estimate of a prepared statement's generic plan can cross jit_above_cost: compiling
    // then took 20–70 ms for a query that runs in 2 ms (trace listings over 1M rows).
    options: "-c jit=off",
    ...(options.statementTimeoutMs === undefined ? {} : { statement_timeout: options.statementTimeoutMs }),
  });
  const onPoolError = options.onPoolError ?? (() => {});
  pool.on("error", onPoolError);
  return wrapKysely("postgres", new Kysely<any>({ dialect: new PostgresDialect({ pool: preparingPool(pool, options.maxPreparedStatements) }) }));
}

function safeProtocol(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    return undefined;
  }
}
