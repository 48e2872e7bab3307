import type { CompiledQuery, Compilable, Kysely, Transaction } from "kysely";
import type { GovernanceDatabase } from "./schema.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

const SENTINEL = "\u0000clasper-param:";

/**
 * A query built with kysely once and then reused with new parameter values.
 *
 * Why: compiling a large CTE statement (building the operation tree, the withSchema rewrite, SQL
 * generation) costs about 2 ms of CPU per call, more than the database takes to run it, which
 * capped the budget hot path at a few hundred operations per second per process. The statement's
 * shape never changes, only its values, so it is compiled once per schema with a placeholder
 * string standing for each value, and each call substitutes the real values into the parameter
 * list. Every value must therefore go through `param(name)` (as text; cast it in SQL, e.g.
 * `${param("amount")}::int8`), and the query's shape must not depend on any value.
 */
export function preparedStatement<Row, Name extends string>(
  build: (db: Executor, param: (name: Name) => string) => Compilable<Row>,
): (db: Executor, values: Readonly<Record<Name, string | null>>) => Promise<Row[]> {
  const bySchema = new Map<string, CompiledQuery<Row>>();
  return async (db, values) => {
    // The compiled SQL names the schema the executor's withSchema plugin selects; a tiny probe
    // query tells executors for different schemas apart without compiling the big one.
    const key = db.selectFrom("budgets").select("tenant_id").compile().sql;
    let compiled = bySchema.get(key);
    if (!compiled) {
      compiled = build(db, (name) => SENTINEL + name).compile();
      bySchema.set(key, compiled);
    }
    const parameters = compiled.parameters.map((value) => {
      if (typeof value !== "string" || !value.startsWith(SENTINEL)) return value;
      const name = value.slice(SENTINEL.length) as Name;
      if (!(name in values)) throw new Error(`prepared statement parameter "${name}" has no value`);
      return values[name];
    });
    const result = await db.executeQuery<Row>({ ...compiled, parameters });
    return result.rows;
  };
}
