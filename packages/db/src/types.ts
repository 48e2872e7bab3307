import pg from "pg";

/**
 * Text-format parsers that make PostgreSQL and PGlite hand back the same JavaScript types.
 *
 * The two drivers disagree out of the box: `pg` returns int8 as a string, PGlite as a lossy
 * number; `pg` returns `date` as a local-midnight Date, PGlite as a UTC one. Money is integer
 * micro-dollars in int8, so int8 must be an exact `bigint` on both. Types not listed here already
 * agree (numeric → string, int4 → number, timestamptz → Date, jsonb → parsed value, bool).
 */
const OID = {
  INT8: 20,
  INT8_ARRAY: 1016,
  DATE: 1082,
  DATE_ARRAY: 1182,
} as const;

type TextParser = (value: string) => unknown;

const parseInt8: TextParser = (value) => BigInt(value);
// A calendar date has no time zone; a string keeps it from drifting with the process TZ.
const parseDate: TextParser = (value) => value;

/** Element parsers; PGlite applies them to array elements itself. */
export const pgliteParsers: Readonly<Record<number, TextParser>> = {
  [OID.INT8]: parseInt8,
  [OID.DATE]: parseDate,
};

/**
 * `pg` parses arrays with per-array-OID parsers, so the array OIDs are wrapped too: the stock
 * parser splits the literal and we convert each element.
 */
function arrayOf(arrayOid: number, element: TextParser): TextParser {
  const split = pg.types.getTypeParser(arrayOid, "text") as (value: string) => (string | null)[];
  return (value) => split(value).map((item) => (item === null ? null : element(item)));
}

const pgParsers: Readonly<Record<number, TextParser>> = {
  [OID.INT8]: parseInt8,
  [OID.INT8_ARRAY]: arrayOf(OID.INT8_ARRAY, parseInt8),
  [OID.DATE]: parseDate,
  [OID.DATE_ARRAY]: arrayOf(OID.DATE_ARRAY, parseDate),
};

/**
 * Per-pool type configuration for `pg`. Registering on the global `pg.types` would change every
 * other pg user in the process (libraries, tests), so parsers are scoped to our pools.
 */
export const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (format !== "binary") {
      const parser = pgParsers[oid];
      if (parser) return parser;
    }
    return pg.types.getTypeParser(oid, format ?? "text");
  }) as pg.CustomTypesConfig["getTypeParser"],
};
