import { Kysely, sql } from "kysely";

export type DatabaseKind = "postgres" | "pglite";

export interface DatabaseOptions {
  /** `postgres://…` connection string. When absent, an embedded PGlite is used. */
  url?: string;
  /** PGlite data directory; `"memory://"` keeps it in memory. Default `./.clasper/pgdata`. */
  dataDir?: string;
  /** PostgreSQL pool size (default 10). PGlite always has one connection. */
  poolMax?: number;
  /**
   * How many distinct parameterised statement texts run as server-side prepared statements on
   * PostgreSQL (see prepared-pool.ts); 0 runs every statement unnamed. Ignored by PGlite.
   */
  maxPreparedStatements?: number;
  /** PostgreSQL `statement_timeout` for every pooled connection. Ignored by PGlite. */
  statementTimeoutMs?: number;
  /**
   * Called when an idle pooled connection fails (server restart, network). The pool has already
   * discarded the connection; the next query reconnects. Default: ignore, because an unhandled
   * pool `error` event would crash the process.
   */
  onPoolError?: (err: Error) => void;
}

export interface Database {
  readonly kind: DatabaseKind;
  /** Unscoped handle; migrations and cross-schema work use it. */
  readonly kysely: Kysely<any>;
  /**
   * The handle a service's store uses: every table reference is qualified with `schema`.
   * Raw `sql` fragments are not rewritten, so they must qualify tables themselves.
   */
  forSchema<DB>(schema: string): Kysely<DB>;
  /** Round-trips `select 1`; rejects when the database is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_DATA_DIR = "./.clasper/pgdata";

/** Wraps a Kysely instance as a `Database`; `close` runs `onClose` instead of destroying directly. */
export function wrapKysely(
  kind: DatabaseKind,
  kysely: Kysely<any>,
  onClose: () => Promise<void> = () => kysely.destroy(),
): Database {
  let closing: Promise<void> | undefined;
  return {
    kind,
    kysely,
    forSchema: <DB>(schema: string) => kysely.withSchema(schema) as unknown as Kysely<DB>,
    ping: async () => {
      await sql`select 1`.execute(kysely);
    },
    // Idempotent so a test teardown and a SIGTERM handler can both call it.
    close: () => (closing ??= onClose()),
  };
}
