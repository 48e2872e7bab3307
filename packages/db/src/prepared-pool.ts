import type pg from "pg";
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";

/**
 * How many distinct statement texts get a server-side prepared statement. Each one lives in every
 * pooled connection's backend (a parse tree and, after a few executions, a cached plan), so the
 * number is bounded; statements seen after the cap is reached run unnamed, as before.
 */
export const DEFAULT_MAX_PREPARED_STATEMENTS = 500;

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
 * Statements without parameters (BEGIN, COMMIT, DDL) keep the simple protocol. Names are derived
 * from a process-wide registry, so one text always has one name on every connection.
 */
export function preparingPool(pool: pg.Pool, maxStatements = DEFAULT_MAX_PREPARED_STATEMENTS): PostgresPool {
  const names = new Map<string, string>();
  const nameFor = (text: string): string | undefined => {
    let name = names.get(text);
    if (name === undefined && names.size < maxStatements) {
      name = `clasper_${names.size.toString(36)}`;
      names.set(text, name);
    }
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
