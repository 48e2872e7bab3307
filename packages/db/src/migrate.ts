import { Migrator, sql, type Kysely, type Migration, type MigrationResult } from "kysely";
import type { Database } from "./database.js";

export type { Migration } from "kysely";

/** `<YYYYMMDDHHmmss>_<what>`: the timestamp orders migrations, the suffix says what they do. */
const MIGRATION_NAME = /^\d{14}_[a-z0-9_]+$/;
/** Unquoted-identifier shape, short enough to leave room for kysely's migration table names. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;
/**
 * First key of the two-int advisory lock; the second is hashtext(schema). The constant keeps our
 * locks from colliding with other users of single-key advisory locks in the same database.
 */
const MIGRATE_LOCK_CLASS = 0x436c6173; // "Clas"

/**
 * Changes whenever migrateSchema changes what the same migrations produce (e.g. which schema they
 * run in). Test templates hash it with the migrations, so such a change rebuilds them.
 */
export const MIGRATE_SCHEMA_REVISION = 2;

export class MigrationError extends Error {
  constructor(
    readonly schema: string,
    readonly migrationName: string | undefined,
    options: { cause: unknown },
  ) {
    const what = migrationName ? `migration "${migrationName}"` : "migrations";
    super(`${what} for schema "${schema}" failed: ${describe(options.cause)}`, options);
    this.name = "MigrationError";
  }
}

/**
 * Brings `schema` up to date with `migrations` and returns the names applied by this call (empty
 * when it was already current). Each schema has its own migration tables, so services migrate
 * independently. All pending migrations run in one transaction: a failure applies none of them.
 *
 * Two processes may start at once (replicas, a migrate Job racing a pod). kysely's Migrator
 * already serializes the migrations themselves, but creating the schema and its migration tables
 * happens before its lock and races (concurrent `CREATE … IF NOT EXISTS` can still fail on the
 * catalog's unique index). So the whole run holds a session advisory lock keyed by schema, on one
 * connection.
 */
export async function migrateSchema(
  db: Database,
  schema: string,
  migrations: Readonly<Record<string, Migration>>,
): Promise<string[]> {
  validate(schema, migrations);
  return db.kysely.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATE_LOCK_CLASS}, hashtext(${schema}))`.execute(conn);
    try {
      await sql`create schema if not exists ${sql.id(schema)}`.execute(conn);
      return await runMigrator(conn, schema, migrations);
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATE_LOCK_CLASS}, hashtext(${schema}))`.execute(conn);
    }
  });
}

async function runMigrator(
  conn: Kysely<any>,
  schema: string,
  migrations: Readonly<Record<string, Migration>>,
): Promise<string[]> {
  const migrator = new Migrator({
    db: conn,
    migrationTableSchema: schema,
    provider: { getMigrations: async () => inSchema(schema, migrations) },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    throw new MigrationError(schema, failedName(results), { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/**
 * Migrations are written with unqualified names (`createTable("budget")`), so each one runs with
 * the service schema first on the search_path. `set local` confines that to the Migrator's
 * transaction, which matters on PGlite where every service shares one session. It also covers
 * raw `sql` (functions, triggers), which a kysely `withSchema` would not rewrite.
 */
function inSchema(schema: string, migrations: Readonly<Record<string, Migration>>): Record<string, Migration> {
  const scoped = async (db: Kysely<any>, step: (db: Kysely<any>) => Promise<void>) => {
    await sql`set local search_path to ${sql.id(schema)}, public`.execute(db);
    await step(db);
  };
  return Object.fromEntries(
    Object.entries(migrations).map(([name, { up, down }]) => [
      name,
      {
        up: (db: Kysely<any>) => scoped(db, up),
        ...(down ? { down: (db: Kysely<any>) => scoped(db, down) } : {}),
      },
    ]),
  );
}

function failedName(results: readonly MigrationResult[] | undefined): string | undefined {
  return results?.find((r) => r.status === "Error")?.migrationName;
}

function validate(schema: string, migrations: Readonly<Record<string, Migration>>): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(`schema name "${schema}" must match ${SCHEMA_NAME}`);
  }
  for (const name of Object.keys(migrations)) {
    if (!MIGRATION_NAME.test(name)) {
      throw new Error(`migration "${name}" in schema "${schema}" must be named <YYYYMMDDHHmmss>_<what> (lowercase)`);
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
