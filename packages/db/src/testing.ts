/**
 * Test database helpers (`@clasper/db/testing`), per STYLE "Tests":
 * - PostgreSQL: a template database `<name>_template_<version>` migrated once in vitest's
 *   globalSetup (reused while its migrations are unchanged), then one
 *   `CREATE DATABASE … TEMPLATE <name>_template_<version>` per test file — a copy costs
 *   milliseconds where re-running migrations costs seconds.
 * - PGlite: the same migrate function runs once on an in-memory instance whose data directory is
 *   dumped to a tarball (`<name>.<version>.tar.gz` in the temp dir); each test file starts its own
 *   in-memory instance from that tarball.
 * The version is a hash of the migrations, so checkouts with different migrations that share one
 * PostgreSQL server (or one temp dir) each copy their own template instead of rebuilding a shared
 * one under each other. globalSetup passes the version to the test files in an environment
 * variable (vitest starts their processes after it); versions unused for a day are removed.
 * The backend comes from CLASPER_TEST_DB (`postgres` | `pglite`, default `pglite`).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql, type Kysely, type Migration } from "kysely";
import pg from "pg";
import type { Database } from "./database.js";
import { MIGRATE_SCHEMA_REVISION } from "./migrate.js";
import { createMemoryPglite } from "./pglite.js";
import { createPostgresDatabase } from "./postgres.js";

export type TestBackend = "postgres" | "pglite";

export const DEFAULT_TEST_DATABASE_URL = "postgres://clasper:clasper@127.0.0.1:5432/clasper_test";

/** `TEST_DATABASE_URL`, or the database scripts/ci-postgres.sh creates. */
export function testDatabaseUrl(): string {
  return process.env["TEST_DATABASE_URL"] || DEFAULT_TEST_DATABASE_URL;
}

/** `CLASPER_TEST_DB`, default `pglite`. */
export function testBackendFromEnv(): TestBackend {
  const value = process.env["CLASPER_TEST_DB"] || "pglite";
  if (value !== "postgres" && value !== "pglite") {
    throw new Error(`CLASPER_TEST_DB must be "postgres" or "pglite", got "${value}"`);
  }
  return value;
}

export type PostgresProbe = { reachable: true } | { reachable: false; reason: string };

/** Connects and runs `select 1` within `timeoutMs`; on failure says why (for the test log). */
export async function probePostgres(url: string = testDatabaseUrl(), timeoutMs = 2000): Promise<PostgresProbe> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A connected client can emit 'error' later (server shutdown); without a listener that crashes.
  client.on("error", () => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect().then(() => client.query("select 1")), timeout]);
    return { reachable: true };
  } catch (err) {
    return { reachable: false, reason: `${redact(url)}: ${errorText(err)}` };
  } finally {
    clearTimeout(timer);
    await client.end().catch(() => {});
  }
}

export async function isPostgresReachable(url: string = testDatabaseUrl(), timeoutMs = 2000): Promise<boolean> {
  return (await probePostgres(url, timeoutMs)).reachable;
}

export interface TemplateSpec {
  /** Lowercase identifier; the template is `<name>_template_<version>`, fresh copies `<name>_<pid>_<hex>`. */
  name: string;
  /** Brings an empty database to the state every test file starts from (usually migrateSchema). */
  migrate: (db: Database) => Promise<void>;
  /**
   * The migrations `migrate` applies, keyed by schema. Their names and source text are hashed; the
   * template is reused while the hash matches. Without it the template is rebuilt every run.
   * (Only each migration's own `up` and `down` are hashed, not helpers they call.)
   */
  migrations?: Readonly<Record<string, Readonly<Record<string, Migration>>>>;
  /** Backends to prepare; default the one CLASPER_TEST_DB selects. */
  backends?: readonly TestBackend[];
}

/**
 * For vitest `globalSetup`: builds (or reuses) the template on each requested backend. Throws when
 * PostgreSQL is requested but unreachable, so a misconfigured run fails instead of passing on
 * nothing. Returns a no-op teardown, so `export default () => setupTemplate(…)` works.
 */
export async function setupTemplate(spec: TemplateSpec): Promise<() => Promise<void>> {
  validateName(spec.name);
  const hash = spec.migrations ? migrationsHash(spec.migrations) : undefined;
  const version = hash === undefined ? "unversioned" : hash.slice(0, 16);
  for (const backend of spec.backends ?? [testBackendFromEnv()]) {
    if (backend === "postgres") await setupPostgresTemplate(spec, hash, version);
    else await setupPgliteTemplate(spec, hash, version);
  }
  process.env[templateVersionVariable(spec.name)] = version;
  return async () => {};
}

export interface FreshDatabase extends Database {
  /** The database name on PostgreSQL; a label on PGlite. */
  readonly name: string;
  /** Connection string on PostgreSQL (to open more handles); undefined on PGlite. */
  readonly url: string | undefined;
  /** Closes the handle and, on PostgreSQL, drops the database. */
  drop(): Promise<void>;
}

/** A private copy of the `name` template for one test file. Call `drop()` in `afterAll`. */
export async function freshDatabase(
  name: string,
  options: { backend?: TestBackend } = {},
): Promise<FreshDatabase> {
  validateName(name);
  const backend = options.backend ?? testBackendFromEnv();
  const version = process.env[templateVersionVariable(name)];
  if (version === undefined) throw new Error(`no template for "${name}" in this run; call setupTemplate({ name: "${name}" }) in globalSetup`);
  return backend === "postgres" ? freshPostgresDatabase(name, version) : freshPgliteDatabase(name, version);
}

/** The suite hooks of the test runner (vitest's `beforeAll`/`afterAll` fit), passed in so this module imports none. */
export interface SuiteHooks {
  beforeAll(fn: () => Promise<void>): void;
  afterAll(fn: () => Promise<void>): void;
}

/**
 * One test file's private copy of the `name` template: created in `beforeAll` and handed to
 * `ready` (to derive schema views and handlers), dropped in `afterAll`.
 */
export function useFreshDatabase(
  hooks: SuiteHooks,
  name: string,
  ready: (database: FreshDatabase) => void | Promise<void>,
): void {
  let database: FreshDatabase | undefined;
  hooks.beforeAll(async () => {
    database = await freshDatabase(name);
    await ready(database);
  });
  hooks.afterAll(async () => {
    await database?.drop();
  });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** First key of the template advisory lock; the second is hashtext(template name). */
const TEMPLATE_LOCK_CLASS = 0x54706c74; // "Tplt"
const HASH_COMMENT_PREFIX = "clasper-template-hash:";
/** Templates of other versions are dropped once unused for this long (a parallel checkout may still copy them). */
const STALE_TEMPLATE_MS = 24 * 60 * 60 * 1000;

async function setupPostgresTemplate(spec: TemplateSpec, hash: string | undefined, version: string): Promise<void> {
  const url = testDatabaseUrl();
  const probe = await probePostgres(url);
  if (!probe.reachable) {
    throw new Error(`PostgreSQL test backend requested but unreachable (${probe.reason}); run scripts/ci-postgres.sh`);
  }
  const template = templateName(spec.name, version);
  // Exclusive lock: parallel test runs of the same version would otherwise drop the template under each other.
  await withTemplateLock(url, template, "exclusive", async (admin) => {
    if (hash !== undefined && (await templateComment(admin, template))?.startsWith(`${HASH_COMMENT_PREFIX}${hash} `)) return;
    await sql`drop database if exists ${sql.id(template)} with (force)`.execute(admin);
    await sql`create database ${sql.id(template)}`.execute(admin);
    const db = createPostgresDatabase(withDatabaseName(url, template), { poolMax: 2 });
    try {
      await spec.migrate(db);
    } finally {
      // CREATE DATABASE … TEMPLATE refuses while anyone is connected to the template.
      await db.close();
    }
    // Written last: a failed migrate leaves no hash, so the next run rebuilds.
    const comment = `${HASH_COMMENT_PREFIX}${hash ?? "unversioned"} built:${new Date().toISOString()}`;
    await sql`comment on database ${sql.id(template)} is ${sql.lit(comment)}`.execute(admin);
  });
  await dropStalePostgresTemplates(url, spec.name, template);
}

/** Drops the name's templates of other versions built more than a day ago (each under its own lock). */
async function dropStalePostgresTemplates(url: string, name: string, current: string): Promise<void> {
  const admin = createPostgresDatabase(url, { poolMax: 1 });
  let stale: string[];
  try {
    const { rows } = await sql<{ datname: string; comment: string | null }>`
      select datname, shobj_description(oid, 'pg_database') as comment from pg_database
      where starts_with(datname, ${`${name}_template_`}) and datname <> ${current}
    `.execute(admin.kysely);
    stale = rows.filter((row) => builtBefore(row.comment, Date.now() - STALE_TEMPLATE_MS)).map((row) => row.datname);
  } finally {
    await admin.close();
  }
  for (const template of stale) {
    await withTemplateLock(url, template, "exclusive", async (conn) => {
      await sql`drop database if exists ${sql.id(template)} with (force)`.execute(conn);
    });
  }
}

function builtBefore(comment: string | null, cutoff: number): boolean {
  const built = / built:(\S+)$/.exec(comment ?? "")?.[1];
  return built !== undefined && Date.parse(built) < cutoff;
}

async function freshPostgresDatabase(name: string, version: string): Promise<FreshDatabase> {
  const url = testDatabaseUrl();
  const template = templateName(name, version);
  const dbName = `${name}_${process.pid}_${randomBytes(4).toString("hex")}`;
  // Shared lock: copies may run in parallel, but not while a run rebuilds the template.
  await withTemplateLock(url, template, "shared", async (admin) => {
    if ((await templateComment(admin, template)) === undefined) {
      throw new Error(`template database ${template} is missing; call setupTemplate({ name: "${name}" }) in globalSetup`);
    }
    await sql`create database ${sql.id(dbName)} template ${sql.id(template)}`.execute(admin);
  });
  const dbUrl = withDatabaseName(url, dbName);
  const db = createPostgresDatabase(dbUrl, { poolMax: 5 });
  return {
    ...db,
    name: dbName,
    url: dbUrl,
    drop: async () => {
      await db.close();
      const admin = createPostgresDatabase(url, { poolMax: 1 });
      try {
        // A connection another role (a test's superuser handle) just closed can still be exiting
        // on the server; FORCE may not terminate it (42501) or it may still count (55006). Wait
        // for it to go rather than fail the test that owned it.
        for (let attempt = 0; ; attempt++) {
          try {
            await sql`drop database if exists ${sql.id(dbName)} with (force)`.execute(admin.kysely);
            break;
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (attempt >= 50 || (code !== "42501" && code !== "55006")) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      } finally {
        await admin.close();
      }
    },
  };
}

async function withTemplateLock(
  url: string,
  template: string,
  mode: "exclusive" | "shared",
  fn: (admin: Kysely<any>) => Promise<void>,
): Promise<void> {
  const admin = createPostgresDatabase(url, { poolMax: 1 });
  const lock = mode === "shared" ? sql`pg_advisory_lock_shared` : sql`pg_advisory_lock`;
  const unlock = mode === "shared" ? sql`pg_advisory_unlock_shared` : sql`pg_advisory_unlock`;
  const key = sql`${TEMPLATE_LOCK_CLASS}, hashtext(${template})`;
  try {
    await admin.kysely.connection().execute(async (conn) => {
      await sql`select ${lock}(${key})`.execute(conn);
      try {
        await fn(conn);
      } finally {
        await sql`select ${unlock}(${key})`.execute(conn);
      }
    });
  } finally {
    await admin.close();
  }
}

/** The hash comment, `""` for a database without one, `undefined` when it does not exist. */
async function templateComment(admin: Kysely<any>, template: string): Promise<string | undefined> {
  const { rows } = await sql<{ comment: string | null }>`
    select shobj_description(oid, 'pg_database') as comment from pg_database where datname = ${template}
  `.execute(admin);
  const row = rows[0];
  return row === undefined ? undefined : (row.comment ?? "");
}

function withDatabaseName(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

// ---------------------------------------------------------------------------------------------
// PGlite

const PGLITE_TEMPLATE_DIR = join(tmpdir(), "clasper-test-templates");

function pgliteTemplatePaths(name: string, version: string): { dump: string; hash: string } {
  return { dump: join(PGLITE_TEMPLATE_DIR, `${name}.${version}.tar.gz`), hash: join(PGLITE_TEMPLATE_DIR, `${name}.${version}.hash`) };
}

async function setupPgliteTemplate(spec: TemplateSpec, hash: string | undefined, version: string): Promise<void> {
  const paths = pgliteTemplatePaths(spec.name, version);
  if (hash !== undefined && (await readFile(paths.hash, "utf8").catch(() => undefined)) === hash) return;
  const { database: db, pglite } = createMemoryPglite();
  try {
    await spec.migrate(db);
    const dump = await pglite.dumpDataDir("gzip");
    await mkdir(PGLITE_TEMPLATE_DIR, { recursive: true });
    // Write-then-rename so a concurrent run never loads a half-written tarball.
    await writeAtomically(paths.dump, Buffer.from(await dump.arrayBuffer()));
    await writeAtomically(paths.hash, hash ?? "unversioned");
  } finally {
    await db.close();
  }
  await removeStalePgliteTemplates(spec.name, version);
}

/** Removes the name's dumps of other versions untouched for a day. */
async function removeStalePgliteTemplates(name: string, version: string): Promise<void> {
  const cutoff = Date.now() - STALE_TEMPLATE_MS;
  for (const file of await readdir(PGLITE_TEMPLATE_DIR)) {
    if (!file.startsWith(`${name}.`) || file.startsWith(`${name}.${version}.`)) continue;
    const path = join(PGLITE_TEMPLATE_DIR, file);
    const modified = await stat(path).then((s) => s.mtimeMs, () => Date.now());
    if (modified < cutoff) await rm(path, { force: true });
  }
}

async function freshPgliteDatabase(name: string, version: string): Promise<FreshDatabase> {
  const paths = pgliteTemplatePaths(name, version);
  const dump = await readFile(paths.dump).catch(() => {
    throw new Error(`PGlite template for "${name}" is missing (${paths.dump}); call setupTemplate({ name: "${name}" }) in globalSetup`);
  });
  const { database: db } = createMemoryPglite(new Blob([dump]));
  return { ...db, name, url: undefined, drop: () => db.close() };
}

async function writeAtomically(path: string, data: Buffer | string): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;
  await writeFile(temp, data);
  await rename(temp, path);
}

// ---------------------------------------------------------------------------------------------

function templateName(name: string, version: string): string {
  return `${name}_template_${version}`;
}

/** The environment variable that tells test files which version of the name's template to copy. */
function templateVersionVariable(name: string): string {
  return `CLASPER_TEST_TEMPLATE_${name.toUpperCase()}`;
}

function validateName(name: string): void {
  // Leaves room for `_template_<16 hex>` and `_<pid>_<hex>` within PostgreSQL's 63-byte identifiers.
  if (!/^[a-z][a-z0-9_]{0,29}$/.test(name)) {
    throw new Error(`test database name "${name}" must be a lowercase identifier of at most 30 characters`);
  }
}

function migrationsHash(migrations: Readonly<Record<string, Readonly<Record<string, Migration>>>>): string {
  const hash = createHash("sha256");
  hash.update(`migrateSchema:${MIGRATE_SCHEMA_REVISION}\n`);
  for (const schema of Object.keys(migrations).sort()) {
    hash.update(`schema:${schema}\n`);
    const bySchema = migrations[schema] ?? {};
    for (const name of Object.keys(bySchema).sort()) {
      const migration = bySchema[name];
      hash.update(`${name}\n${String(migration?.up)}\n${String(migration?.down ?? "")}\n`);
    }
  }
  return hash.digest("hex");
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<invalid url>";
  }
}

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(errorText).join("; ");
  if (err instanceof Error) return err.message || (err as { code?: string }).code || err.name;
  return String(err);
}
