import type pg from "pg";
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";

/**
 * How many distinct statement texts get a server-side prepared statement. Each one lives in every
 * pooled connection's backend (a parse tree and, after a few executions, a cached plan), so the
 * number is bounded; statements seen after the cap is reached run unnamed, as before.
 */
export const DEFAULT_MAX_PREPARED_STATEMENTS = 500;

/**
 * Put in a statement's text (a SQL comment) to keep it unnamed: PostgreSQL then plans it for the
 * actual parameter values on every execution. For statements whose best plan depends on a value's
 * frequency, where a cached generic plan (costed for an average value) can be orders of magnitude
 * slower for a skewed one.
 */
export const PLAN_PER_CALL = "/* plan per call */";

/**
 * A kysely pool whose parameterised statements run as named (server-side prepared) statements.
 *
 * Why: the pg driver sends every parameterised query as an unnamed statement, which PostgreSQL
 * parses, analyses and plans again on every execution. Clasper's hot statements are large CTEs
 * (the budget reservation is one statement of nine CTEs) whose planning costs more than running
 * them: on a 2-core machine, re-planning alone held the budget path to a few hundred operations
 * per second. Named per text, each connection parses a statement once; PostgreSQL's plan cache
 * then reuses a generic plan when it is no worse than the custom ones (`plan_cache_mode = auto`).
 *
 * Statements without parameters (BEGIN, COMMIT, DDL) keep the simple protocol, and a text
 * carrying PLAN_PER_CALL stays unnamed. Names are derived from a process-wide registry, so one
 * text always has one name on every connection.
 */
export function preparingPool(pool: pg.Pool, maxStatements = DEFAULT_MAX_PREPARED_STATEMENTS): PostgresPool {
  // text → its statement name, or "" for a text marked PLAN_PER_CALL (decided once per text).
  const names = new Map<string, string>();
  let named = 0;
  const nameFor = (text: string): string | undefined => {
    const known = names.get(text);
    if (known !== undefined) return known || undefined;
    if (text.includes(PLAN_PER_CALL)) {
      names.set(text, "");
      return undefined;
    }
    if (named >= maxStatements) return undefined;
    const name = `clasper_${(named++).toString(36)}`;
    names.set(text, name);
    return name;
  };
  const wrapped = new WeakMap<pg.PoolClient, PreparingClient>();
  const wrap = (client: pg.PoolClient): PreparingClient => {
    let facade = wrapped.get(client);
    if (!facade) wrapped.set(client, (facade = new PreparingClient(client, nameFor)));
    return facade;
  };
  return {
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end(),
  };
}

/** One pooled connection as kysely sees it; kysely's client interface is a description of pg's. */
class PreparingClient implements PostgresPoolClient {
  constructor(
    private readonly client: pg.PoolClient,
    private readonly nameFor: (text: string) => string | undefined,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sqlOrCursor: string | PostgresCursor<R>, parameters: ReadonlyArray<unknown> = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof sqlOrCursor !== "string") return this.client.query(sqlOrCursor as PostgresCursor<R> & pg.Submittable);
    const values = [...parameters];
    const name = values.length > 0 ? this.nameFor(sqlOrCursor) : undefined;
    const config: pg.QueryConfig = name ? { name, text: sqlOrCursor, values } : { text: sqlOrCursor, values };
    return this.client.query(config) as Promise<pg.QueryResult> as Promise<unknown> as Promise<PostgresQueryResult<R>>;
  }

  release(): void {
    this.client.release();
  }
}
