import { createQueryId, type Compilable, type CompiledQuery } from "kysely";

/** Stands for one value while the statement of a shape is compiled. */
class Placeholder {
  constructor(readonly name: string) {}
}

interface Shape<R> {
  compiled: CompiledQuery<R>;
  /** The value each parameter takes, in parameter order. */
  parameterNames: readonly string[];
}

/** How many shapes of one statement an executor keeps (see compiledByShape). */
export const DEFAULT_MAX_SHAPES = 256;

/**
 * A statement kysely builds and compiles once per shape instead of on every call: building and
 * compiling a trace listing (select parsing, the schema transformer, freezing every node) costs
 * ~0.7 ms of CPU, more than PostgreSQL spends running it. A shape is which of the values are
 * given (not undefined). `build` may decide the statement from that, never from what a value is:
 * when compiling, it gets placeholders instead of values, and every parameter of the compiled
 * statement must be one of them (anything else is an error, so a value cannot be frozen into a
 * shape). Each call then gets the shape's text with its own values as the parameters.
 * Shapes are kept per executor, since its plugins (the schema) are part of the text, and at most
 * `maxShapes` of them: the filters a caller combines choose the shape, so an unbounded cache
 * could be grown at will (beyond the cap a shape is compiled for the one call, as before).
 */
export function compiledByShape<E extends object, V extends object, R>(
  build: (db: E, values: V) => Compilable<R>,
  maxShapes = DEFAULT_MAX_SHAPES,
): (db: E, values: V) => CompiledQuery<R> {
  const shapes = new WeakMap<E, Map<string, Shape<R>>>();
  return (db, input) => {
    const values = input as Readonly<Record<string, unknown>>;
    const given = Object.keys(values)
      .filter((name) => values[name] !== undefined)
      .sort();
    const key = given.join(",");
    let ofExecutor = shapes.get(db);
    if (!ofExecutor) shapes.set(db, (ofExecutor = new Map()));
    let shape = ofExecutor.get(key);
    if (!shape) {
      shape = compileShape(build, db, given);
      if (ofExecutor.size < maxShapes) ofExecutor.set(key, shape);
    }
    return { ...shape.compiled, queryId: createQueryId(), parameters: shape.parameterNames.map((name) => values[name]) };
  };
}

function compileShape<E, V extends object, R>(build: (db: E, values: V) => Compilable<R>, db: E, given: readonly string[]): Shape<R> {
  const placeholders = Object.fromEntries(given.map((name) => [name, new Placeholder(name)]));
  const compiled = build(db, placeholders as unknown as V).compile();
  const parameterNames = compiled.parameters.map((parameter) => {
    if (!(parameter instanceof Placeholder)) throw new Error(`compiledByShape: the parameter ${String(parameter)} of "${compiled.sql}" is not one of the values`);
    return parameter.name;
  });
  return { compiled, parameterNames };
}
