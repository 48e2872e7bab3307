import { ScalarType, toJson, type DescEnum, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence, isWrapperDesc, TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { enumToRest, protoToRestJson } from "./json-shape.js";

/**
 * Answers as REST JSON text. What REST JSON is stays defined by json-shape.ts over protobuf's
 * own proto3 JSON (`restJsonByReflection`): two reflective walks and a JSON.stringify cost
 * ~1.3 ms of CPU for a 50-trace listing. `renderRestJson` writes the same text in one pass with
 * a writer compiled once per message type from its descriptor: the field order, the presence
 * rules of proto3 JSON with every implicit field emitted, the REST enum names and the
 * well-known types' own JSON (left to protobuf) are decided when compiling, not per value.
 * test/rest-json.test.ts holds it to the reference on generated messages of every type the
 * gateway answers with. A value that is not of its field's type (which protobuf refuses to
 * serialize) and any type the writer does not cover go to the reference, so errors and rare
 * shapes still come from there.
 */

/** The proto3 JSON the REST shape is made from: proto field names, implicit fields always written. */
const PROTO_JSON = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

/** The reference: REST JSON by reflection (protobuf's toJson, then json-shape.ts). */
export function restJsonByReflection(desc: DescMessage, message: Message): JsonValue {
  return protoToRestJson(desc, toJson(desc, message as never, PROTO_JSON));
}

/** JSON text of one value of a field (a message, a list or map item, or a singular value). */
type ValueWriter = (value: unknown) => string;
/** `"name":value` of one field of a message, or undefined when proto3 JSON leaves it out. */
type FieldWriter = (message: Record<string, unknown>) => string | undefined;

/** A value the writer does not expect: the message goes to the reference, which decides. */
class NotWritable extends Error {}

function notWritable(): never {
  throw new NotWritable();
}

/** As JSON.stringify writes a number. */
const numberText = (value: number): string => (Number.isFinite(value) ? String(value) : "null");

/** Characters JSON.stringify writes as escapes: quote, backslash, controls, and (unpaired) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** As JSON.stringify writes a string; most of ours (ids, names) need no escape, and quoting them is cheaper. */
const stringText = (value: string): string => (NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`);

function scalarWriter(type: ScalarType): ValueWriter {
  switch (type) {
    case ScalarType.STRING:
      return (v) => (typeof v === "string" ? stringText(v) : notWritable());
    case ScalarType.BOOL:
      return (v) => (v === true ? "true" : v === false ? "false" : notWritable());
    case ScalarType.BYTES:
      return (v) => (v instanceof Uint8Array ? `"${base64Encode(v)}"` : notWritable());
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      // proto3 JSON writes the non-finite values as strings.
      return (v) => {
        if (typeof v !== "number") return notWritable();
        if (Number.isFinite(v)) return String(v);
        return Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
      };
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      // As decimal strings; a bigint's digits need no escaping.
      return (v) => {
        if (typeof v === "bigint") return `"${v}"`;
        if (typeof v === "string" || (typeof v === "number" && Number.isInteger(v))) return JSON.stringify(String(v));
        return notWritable();
      };
    default:
      return (v) => (typeof v === "number" ? numberText(v) : notWritable());
  }
}

/** REST enum text per number (lower-case name, null for the zero value); an unknown number as itself. */
function enumWriter(desc: DescEnum): ValueWriter {
  if (desc.typeName === "google.protobuf.NullValue") return (v) => (typeof v === "number" ? "null" : notWritable());
  const texts = new Map<number, string>();
  for (const value of desc.values) texts.set(value.number, JSON.stringify(enumToRest(desc, desc.value[value.number]!.jsonName)));
  return (v) => (typeof v === "number" ? (texts.get(v) ?? numberText(v)) : notWritable());
}

const isWellKnown = (desc: DescMessage) => desc.typeName.startsWith("google.protobuf.");

/** The range proto3 JSON allows a Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
const TIMESTAMP_MS_MIN = Date.parse("0001-01-01T00:00:00Z");
const TIMESTAMP_MS_MAX = Date.parse("9999-12-31T23:59:59Z");

/** "YYYY-MM-DDT" of the day last written: a listing's timestamps mostly share their day. */
let lastDay = { day: Number.NaN, text: "" };

const twoDigits = (n: number) => (n < 10 ? `0${n}` : String(n));

/**
 * A Timestamp as protobuf writes it (RFC 3339, UTC, 0, 3, 6 or 9 fraction digits), one per
 * listed trace: protobuf's writer formats a Date and replaces in the text (~1 µs each).
 */
function timestampText(v: unknown): string {
  const { $typeName, seconds, nanos } = v as Timestamp;
  const ms = Number(seconds) * 1000;
  if ($typeName !== TimestampSchema.typeName || ms < TIMESTAMP_MS_MIN || ms > TIMESTAMP_MS_MAX || nanos < 0 || nanos > 999_999_999) return notWritable();
  const day = Math.floor(ms / 86_400_000);
  // In this range toISOString() writes a four-digit year.
  if (day !== lastDay.day) lastDay = { day, text: new Date(day * 86_400_000).toISOString().slice(0, 11) };
  const second = (ms - day * 86_400_000) / 1000;
  const time = `${twoDigits(Math.floor(second / 3600))}:${twoDigits(Math.floor(second / 60) % 60)}:${twoDigits(second % 60)}`;
  if (!(nanos > 0)) return `"${lastDay.text}${time}Z"`;
  const digits = String(nanos + 1_000_000_000).slice(1);
  const fraction = digits.endsWith("000000") ? digits.slice(0, 3) : digits.endsWith("000") ? digits.slice(0, 6) : digits;
  return `"${lastDay.text}${time}.${fraction}Z"`;
}

/**
 * Field values protobuf-es holds in another form than the message (a Struct field as a plain
 * JSON object, a wrapper as its scalar): protobuf converts those itself, so their messages are
 * left to the reference.
 */
function heldAsLocalValue(field: DescField): boolean {
  const desc = field.message;
  if (desc === undefined) return false;
  if (desc.typeName === "google.protobuf.Struct" && field.parent.typeName !== "google.protobuf.Value") return true;
  return field.fieldKind === "message" && field.oneof === undefined && isWrapperDesc(desc);
}

class NotCompiled extends Error {}

function compiler() {
  const writers = new Map<DescMessage, { write: ValueWriter; compiled: boolean }>();

  const byReflection = (desc: DescMessage): ValueWriter => (v) => JSON.stringify(restJsonByReflection(desc, v as Message));

  /** A message value: its compiled writer, protobuf's JSON for a well-known type (REST leaves it as is). */
  const messageWriter = (desc: DescMessage): ValueWriter => {
    if (desc.typeName === TimestampSchema.typeName) return timestampText;
    return isWellKnown(desc) ? (v) => JSON.stringify(toJson(desc, v as never, PROTO_JSON)) : writerOf(desc).write;
  };

  const valueWriter = (field: DescField, kind: "scalar" | "enum" | "message"): ValueWriter =>
    kind === "message" ? messageWriter(field.message!) : kind === "enum" ? enumWriter(field.enum!) : scalarWriter(field.scalar!);

  function fieldWriter(desc: DescMessage, field: DescField): FieldWriter {
    // json-shape.ts finds a field by its proto or JSON name, and writes a key to a plain object.
    if (field.name === "__proto__" || desc.fields.find((f) => f.name === field.name || f.jsonName === field.name) !== field || heldAsLocalValue(field)) {
      throw new NotCompiled(field.toString());
    }
    const key = `${JSON.stringify(field.name)}:`;
    const local = field.localName;
    switch (field.fieldKind) {
      case "list": {
        const item = valueWriter(field, field.listKind);
        return (m) => {
          const list = m[local] as readonly unknown[];
          let out = "";
          for (let i = 0; i < list.length; i++) out += (i === 0 ? "" : ",") + item(list[i]);
          return `${key}[${out}]`;
        };
      }
      case "map": {
        const item = valueWriter(field, field.mapKind);
        return (m) => {
          const map = m[local] as Record<string, unknown>;
          let out = "";
          for (const k of Object.keys(map)) {
            // json-shape.ts copies entries by assignment, which drops this one.
            if (k === "__proto__") continue;
            out += `${out === "" ? "" : ","}${stringText(k)}:${item(map[k])}`;
          }
          return `${key}{${out}}`;
        };
      }
      default: {
        const value = valueWriter(field, field.fieldKind);
        const oneof = field.oneof;
        if (oneof !== undefined) {
          return (m) => {
            const selected = m[oneof.localName] as { case: string | undefined; value?: unknown };
            return selected.case === local ? key + value(selected.value) : undefined;
          };
        }
        if (field.presence !== FeatureSet_FieldPresence.IMPLICIT) {
          // As protobuf: set means an own property that is not undefined; a missing required field is an error.
          const required = field.presence === FeatureSet_FieldPresence.LEGACY_REQUIRED;
          return (m) => {
            const v = m[local];
            if (v !== undefined && Object.prototype.hasOwnProperty.call(m, local)) return key + value(v);
            return required ? notWritable() : undefined;
          };
        }
        return (m) => key + value(m[local]);
      }
    }
  }

  function writerOf(desc: DescMessage): { write: ValueWriter; compiled: boolean } {
    const existing = writers.get(desc);
    if (existing) return existing;
    // Registered before its fields compile, so that a recursive type finds itself.
    let body: ValueWriter = () => notWritable();
    const entry = { write: (v: unknown) => body(v), compiled: true };
    writers.set(desc, entry);
    try {
      if (isWellKnown(desc)) throw new NotCompiled(desc.typeName);
      const fields = desc.fields
        .concat()
        .sort((a, b) => a.number - b.number)
        .map((f) => fieldWriter(desc, f));
      const typeName = desc.typeName;
      body = (v) => {
        const m = v as Record<string, unknown>;
        if (m.$typeName !== typeName) return notWritable();
        let out = "";
        for (let i = 0; i < fields.length; i++) {
          const piece = fields[i]!(m);
          if (piece !== undefined) out += out === "" ? piece : `,${piece}`;
        }
        return `{${out}}`;
      };
    } catch (err) {
      if (!(err instanceof NotCompiled)) throw err;
      body = byReflection(desc);
      entry.compiled = false;
    }
    return entry;
  }

  return writerOf;
}

const writerOf = compiler();

/** The REST JSON text of `message`: exactly JSON.stringify(restJsonByReflection(desc, message)). */
export function renderRestJson(desc: DescMessage, message: Message): string {
  try {
    return writerOf(desc).write(message);
  } catch (err) {
    if (err instanceof NotWritable) return JSON.stringify(restJsonByReflection(desc, message));
    throw err;
  }
}

/** Whether `desc` has a compiled writer (else it is rendered by reflection); for tests. */
export function hasCompiledWriter(desc: DescMessage): boolean {
  return writerOf(desc).compiled;
}
