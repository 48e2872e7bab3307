import { CompiledQuery, WithSchemaPlugin, type Compilable, type Kysely, type QueryResult, type Transaction } from "kysely";
import type { TraceDatabase } from "./schema.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

/** Stands for a value in a statement built once; each slot is one distinct object. */
class Slot {
  constructor(readonly name: string) {}
}

const NO_SCHEMA = {};

/**
 * A statement written with kysely but built and compiled once per schema plugin (a service has
 * one; its transactions share it), then sent as that SQL text with each call's values. Only the
 * values may vary between calls, never the shape; they are given by name.
 *
 * Why: ingest's two statements are large (13 column arrays for the spans; 42 arrays and a SET of
 * 50 expressions for the traces), and building, transforming (schema plugin) and compiling them
 * on every batch cost the service more CPU than anything but the payload itself.
 */
export function preparedStatement<Name extends string, Row>(
  names: readonly Name[],
  build: (db: Executor, value: Readonly<Record<Name, unknown>>) => Compilable<Row>,
): (db: Executor, values: Readonly<Record<Name, unknown>>) => Promise<QueryResult<Row>> {
  const compiled = new WeakMap<object, { sql: string; order: readonly Name[] }>();
  const slots = Object.fromEntries(names.map((name) => [name, new Slot(name)])) as Record<Name, Slot>;
  return async (db, values) => {
    const key = db.getExecutor().plugins.find((plugin) => plugin instanceof WithSchemaPlugin) ?? NO_SCHEMA;
    let statement = compiled.get(key);
    if (statement === undefined) {
      const query = build(db, slots).compile();
      const order = query.parameters.map((parameter) => {
        if (!(parameter instanceof Slot)) throw new Error(`a prepared statement's values must all be named: ${String(parameter)}`);
        return parameter.name as Name;
      });
      compiled.set(key, (statement = { sql: query.sql, order }));
    }
    return db.executeQuery(CompiledQuery.raw(statement.sql, statement.order.map((name) => values[name])) as CompiledQuery<Row>);
  };
}
