import { sql, type RawBuilder } from "kysely";
import type { DatabaseKind } from "@clasper/db";
import { isoMicros } from "../ingest/normalize.js";

/*
 * A batch of rows sent as ONE array parameter per column and read back with
 * `select $1, unnest($2::text[]), unnest($3::smallint[]), ...`: one statement per batch whatever
 * its size, and nothing for PostgreSQL to parse. On PostgreSQL each array goes in the binary
 * format (array_send's layout: a header, then each element's length and bytes), which the pg
 * driver sends as it is for a Buffer parameter, so array_recv copies values out; the single jsonb
 * document this replaced made PostgreSQL lex and unescape every attribute value, about a third of
 * its CPU on span ingest (docs/PERFORMANCE.md, "Span ingest"). The unnests are in the select list,
 * where PostgreSQL steps through the arrays together (ProjectSet); in FROM it would first copy
 * every row into a tuplestore (~10% of the backend's CPU on span ingest).
 *
 * PGlite's driver writes every parameter itself in the text format, so there the arrays are
 * plain JavaScript arrays, which it writes as array literals. Same statement, same rows.
 */

/** How the column arrays travel: binary buffers (PostgreSQL) or JavaScript arrays (any driver). */
export type ArrayEncoding = "binary" | "literal";

export function arrayEncodingFor(kind: DatabaseKind): ArrayEncoding {
  return kind === "postgres" ? "binary" : "literal";
}

/** The JavaScript value of each SQL type a column can have. timestamptz: µs since 1970 UTC. */
interface ValueOf {
  text: string;
  bytea: Uint8Array;
  smallint: number;
  integer: number;
  bigint: bigint;
  boolean: boolean;
  timestamptz: number;
}

type SqlType = keyof ValueOf;

/**
 * One column: its name, the SQL type it travels as, how a row gives its value, and the type it is
 * cast to when the table stores another (e.g. `jsonb` from text).
 */
export type Column<Row, Name extends string> = {
  [T in SqlType]: { name: Name; type: T; value: (row: Row) => ValueOf[T] | null; cast?: string };
}[SqlType];

/** A column typed by its SQL type, so `value` is checked against it. */
export function column<Row>() {
  return <Name extends string, T extends SqlType>(name: Name, type: T, value: (row: Row) => ValueOf[T] | null, cast?: string): Column<Row, Name> =>
    ({ name, type, value, ...(cast === undefined ? {} : { cast }) }) as Column<Row, Name>;
}

/**
 * The rows of a table (after tenant_id) as column arrays: the column names for
 * `insertInto(...).columns(...)`, and `select <tenant>, unnest(...), ...` over values named by
 * column (`tenant_id`, then one array per column, all of one length), which `values` encodes.
 */
export function recordset<Row, Name extends string>(columns: readonly Column<Row, Name>[]) {
  const names = columns.map((c) => c.name);
  return {
    columns: ["tenant_id" as const, ...names],
    source(values: Readonly<Record<"tenant_id" | Name, unknown>>): RawBuilder<unknown> {
      const unnests = columns.map((c) => sql`unnest(${values[c.name]}::${sql.raw(c.type)}[])${sql.raw(c.cast === undefined ? "" : `::${c.cast}`)}`);
      return sql`select ${values.tenant_id}, ${sql.join(unnests)}`;
    },
    values(tenantId: string, rows: readonly Row[], encoding: ArrayEncoding): Record<"tenant_id" | Name, unknown> {
      const values: Record<string, unknown> = { tenant_id: tenantId };
      for (const c of columns) values[c.name] = columnArray(c, rows, encoding);
      return values as Record<"tenant_id" | Name, unknown>;
    },
  };
}

function columnArray<Row>(c: Column<Row, string>, rows: readonly Row[], encoding: ArrayEncoding): Buffer | unknown[] {
  const values = rows.map(c.value as (row: Row) => ValueOf[SqlType] | null);
  return encoding === "binary" ? binaryArray(c.type, values) : values.map((v) => (v === null ? null : literalValue(c.type, v)));
}

function literalValue(type: SqlType, value: ValueOf[SqlType]): unknown {
  if (type === "timestamptz") return isoMicros(value as number);
  if (type === "bigint") return String(value);
  return value;
}

/** Element type OIDs (pg_type); array_recv refuses an array whose element type is not the cast's. */
const ELEMENT_OID: Readonly<Record<SqlType, number>> = { text: 25, bytea: 17, smallint: 21, integer: 23, bigint: 20, boolean: 16, timestamptz: 1184 };
const FIXED_SIZE: Readonly<Record<Exclude<SqlType, VariableType>, number>> = { smallint: 2, integer: 4, bigint: 8, boolean: 1, timestamptz: 8 };
type VariableType = "text" | "bytea";
/** PostgreSQL counts timestamps in µs from 2000-01-01 UTC. */
const PG_EPOCH_MICROS = 946_684_800_000_000;
const HEADER_BYTES = 20;
const TWO_32 = 2 ** 32;

/** A one-dimensional array in PostgreSQL's binary format (array_send). */
function binaryArray(type: SqlType, values: readonly (ValueOf[SqlType] | null)[]): Buffer {
  // Room for the worst case, so each value is written in one pass: UTF-8 takes at most three
  // bytes per UTF-16 unit. The array is the part written.
  let room = HEADER_BYTES;
  let hasNull = false;
  for (const value of values) {
    room += 4;
    if (value === null) hasNull = true;
    else if (type === "text") room += 3 * (value as string).length;
    else if (type === "bytea") room += (value as Uint8Array).length;
    else room += FIXED_SIZE[type];
  }
  const buf = Buffer.allocUnsafe(room);
  buf.writeInt32BE(1, 0); // dimensions
  buf.writeInt32BE(hasNull ? 1 : 0, 4);
  buf.writeInt32BE(ELEMENT_OID[type], 8);
  buf.writeInt32BE(values.length, 12);
  buf.writeInt32BE(1, 16); // lower bound
  let at = HEADER_BYTES;
  for (const value of values) {
    if (value === null) {
      at = buf.writeInt32BE(-1, at);
    } else if (type === "text") {
      const written = writeText(buf, at + 4, value as string);
      buf.writeInt32BE(written, at);
      at += 4 + written;
    } else if (type === "bytea") {
      at = buf.writeInt32BE((value as Uint8Array).length, at);
      buf.set(value as Uint8Array, at);
      at += (value as Uint8Array).length;
    } else {
      at = buf.writeInt32BE(FIXED_SIZE[type], at);
      at = writeFixed(buf, at, type, value);
    }
  }
  return buf.subarray(0, at);
}

/** Below this many characters, copying ASCII by hand beats Buffer#write's call overhead. */
const SHORT_TEXT = 64;

/** Writes `text` as UTF-8 at `at` (room known to suffice); returns the bytes written. */
function writeText(buf: Buffer, at: number, text: string): number {
  const n = text.length;
  if (n < SHORT_TEXT) {
    let i = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + i] = c;
    }
    if (i === n) return n;
  }
  return buf.write(text, at, "utf8");
}

function writeFixed(buf: Buffer, at: number, type: SqlType, value: ValueOf[SqlType]): number {
  switch (type) {
    case "smallint":
      return buf.writeInt16BE(value as number, at);
    case "integer":
      return buf.writeInt32BE(value as number, at);
    case "bigint":
      return buf.writeBigInt64BE(value as bigint, at);
    case "boolean":
      return buf.writeUInt8(value ? 1 : 0, at);
    case "timestamptz":
      return writeInt64(buf, at, (value as number) - PG_EPOCH_MICROS);
    default:
      throw new Error(`no fixed-size encoding for ${type}`);
  }
}

/** An integer below 2^53 as int64, without a BigInt per value. */
function writeInt64(buf: Buffer, at: number, value: number): number {
  const high = Math.floor(value / TWO_32);
  buf.writeInt32BE(high, at);
  return buf.writeUInt32BE(value - high * TWO_32, at + 4);
}

/** A text[] literal (`{"a","b"}`) for a column sent as text and read with `::text[]`. */
export function textArrayLiteral(items: readonly string[]): string {
  return `{${items.map((item) => `"${item.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
}
