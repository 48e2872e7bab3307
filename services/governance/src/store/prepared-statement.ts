import { CompiledQuery, sql, WithSchemaPlugin, type Kysely, type RawBuilder, type Transaction } from "kysely";
import type { GovernanceDatabase } from "./schema.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

/** A parameter as it goes over the wire: the call's casts give it its SQL type (arrays: `type[]`). */
type CallScalar = string | boolean | null;
export type CallValue = CallScalar | readonly CallScalar[];

const NO_SCHEMA = {};
const schemas = new WeakMap<object, string | undefined>();

/**
 * The schema the executor's `withSchema` plugin qualifies tables with (undefined without one).
 * Kysely keeps that name private, so one probe query is compiled per plugin instance (a service
 * has one; each transaction reuses its parent's) and the name read back from the compiled SQL.
 */
function schemaOf(db: Executor): string | undefined {
  const key = db.getExecutor().plugins.find((plugin) => plugin instanceof WithSchemaPlugin) ?? NO_SCHEMA;
  if (schemas.has(key)) return schemas.get(key);
  const probe = db.selectFrom("budgets").select("tenant_id").compile().sql;
  const quoted = / from "((?:[^"]|"")+)"\."budgets"$/.exec(probe)?.[1];
  const schema = quoted?.replaceAll('""', '"');
  schemas.set(key, schema);
  return schema;
}

/** `schema.name` of one of the service's SQL functions, for use inside a kysely `sql` fragment. */
export function schemaFunction(db: Executor, name: string): RawBuilder<unknown> {
  const schema = schemaOf(db);
  return schema === undefined ? sql.id(name) : sql.id(schema, name);
}

/**
 * A call of one of the service's PL/pgSQL functions (migration 20261126000000) that returns one
 * row: `select * from schema.name($1::type, …)`.
 *
 * Why not a kysely query: the call's text depends only on the schema, so it is written once per
 * schema and sent as is; on PostgreSQL the pool runs it as a named prepared statement, parsed
 * once per connection. Building and compiling an equivalent kysely query per call cost more CPU
 * than the database spends running the function.
 */
export function storedFunction<Row>(name: string, types: readonly string[]): (db: Executor, values: readonly CallValue[]) => Promise<Row | undefined> {
  const call = storedSetFunction<Row>(name, types);
  return async (db, values) => (await call(db, values))[0];
}

/** The same for a function that returns a set of rows (the batch functions: one row per item). */
export function storedSetFunction<Row>(name: string, types: readonly string[]): (db: Executor, values: readonly CallValue[]) => Promise<Row[]> {
  const texts = new Map<string | undefined, string>();
  const args = types.map((type, i) => `$${i + 1}::${type}`).join(", ");
  return async (db, values) => {
    if (values.length !== types.length) throw new Error(`${name} takes ${types.length} arguments, got ${values.length}`);
    const schema = schemaOf(db);
    let text = texts.get(schema);
    if (text === undefined) {
      text = `select * from ${schema === undefined ? "" : `"${schema.replaceAll('"', '""')}".`}"${name}"(${args})`;
      texts.set(schema, text);
    }
    const result = await db.executeQuery<Row>(CompiledQuery.raw(text, values as unknown[]));
    return result.rows;
  };
}
