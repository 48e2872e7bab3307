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
/** A value writer the generated code calls as `.write`; a message type's is set once compiled. */
interface Writer {
  write: ValueWriter;
}

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
  const writers = new Map<DescMessage, Writer & { compiled: boolean }>();

  const byReflection = (desc: DescMessage): ValueWriter => (v) => JSON.stringify(restJsonByReflection(desc, v as Message));

  /** A message value: its compiled writer, protobuf's JSON for a well-known type (REST leaves it as is). */
  const messageWriter = (desc: DescMessage): Writer => {
    if (desc.typeName === TimestampSchema.typeName) return { write: timestampText };
    return isWellKnown(desc) ? { write: (v) => JSON.stringify(toJson(desc, v as never, PROTO_JSON)) } : writerOf(desc);
  };

  const valueWriter = (field: DescField, kind: "scalar" | "enum" | "message"): Writer =>
    kind === "message" ? messageWriter(field.message!) : { write: kind === "enum" ? enumWriter(field.enum!) : scalarWriter(field.scalar!) };

  /**
   * The writer of one message type as generated code: one statement per field, in field-number
   * order, reading the field by name, so that every call site sees one kind of value (a loop
   * over per-field closures is megamorphic, and was 40% slower). Values are written by the
   * writers above, which the code reaches through `w` (as `w[i].write`, so that a nested type's
   * writer can be set once it is compiled); keys and names enter it as JSON string literals only.
   */
  function generatedBody(desc: DescMessage): ValueWriter {
    const refs: unknown[] = [desc.typeName, notWritable, { write: stringText }];
    const use = (writer: unknown) => `w[${refs.push(writer) - 1}]`;
    const lines: string[] = [];
    // Whether a field before this one is always written (then this one follows a comma).
    let started = false;
    for (const field of desc.fields.concat().sort((a, b) => a.number - b.number)) {
      // json-shape.ts finds a field by its proto or JSON name, and writes a key to a plain object.
      if (field.name === "__proto__" || desc.fields.find((f) => f.name === field.name || f.jsonName === field.name) !== field || heldAsLocalValue(field)) {
        throw new NotCompiled(field.toString());
      }
      const key = JSON.stringify(`${JSON.stringify(field.name)}:`);
      const prefix = started ? `"," + ${key}` : `(s === "" ? "" : ",") + ${key}`;
      const local = JSON.stringify(field.localName);
      switch (field.fieldKind) {
        case "list": {
          const item = use(valueWriter(field, field.listKind));
          lines.push(`v = m[${local}]; t = ""; for (let i = 0; i < v.length; i++) t += (i === 0 ? "" : ",") + ${item}.write(v[i]); s += ${prefix} + "[" + t + "]";`);
          started = true;
          break;
        }
        case "map": {
          const item = use(valueWriter(field, field.mapKind));
          // json-shape.ts copies entries by assignment, which drops "__proto__".
          lines.push(
            `v = m[${local}]; t = ""; for (const k of Object.keys(v)) if (k !== "__proto__") t += (t === "" ? "" : ",") + w[2].write(k) + ":" + ${item}.write(v[k]); s += ${prefix} + "{" + t + "}";`,
          );
          started = true;
          break;
        }
        default: {
          const value = use(valueWriter(field, field.fieldKind));
          if (field.oneof !== undefined) {
            lines.push(`v = m[${JSON.stringify(field.oneof.localName)}]; if (v.case === ${local}) s += ${prefix} + ${value}.write(v.value);`);
          } else if (field.presence !== FeatureSet_FieldPresence.IMPLICIT) {
            // As protobuf: set means an own property that is not undefined; a missing required field is an error.
            const unset = field.presence === FeatureSet_FieldPresence.LEGACY_REQUIRED ? " else w[1]();" : "";
            lines.push(`v = m[${local}]; if (v !== undefined && Object.prototype.hasOwnProperty.call(m, ${local})) s += ${prefix} + ${value}.write(v);${unset}`);
          } else {
            lines.push(`s += ${prefix} + ${value}.write(m[${local}]);`);
            started = true;
          }
        }
      }
    }
    const source = `return (m) => {\n  if (m.$typeName !== w[0]) return w[1]();\n  let s = "", t, v;\n  ${lines.join("\n  ")}\n  return "{" + s + "}";\n};`;
    return new Function("w", source)(refs) as ValueWriter;
  }

  function writerOf(desc: DescMessage): Writer & { compiled: boolean } {
    const existing = writers.get(desc);
    if (existing) return existing;
    // Registered before its fields compile, so that a recursive type finds itself.
    const entry = { write: notWritable as ValueWriter, compiled: true };
    writers.set(desc, entry);
    try {
      if (isWellKnown(desc)) throw new NotCompiled(desc.typeName);
      entry.write = generatedBody(desc);
    } catch (err) {
      if (!(err instanceof NotCompiled)) throw err;
      entry.write = byReflection(desc);
      entry.compiled = false;
    }
    return entry;
  }

  return writerOf;
}

const writerOf = compiler();

/**
 * The compiled writer alone, without the fallback: throws NotWritable for a message it leaves
 * to the reference. For tests, which must see it write every well-formed message itself.
 */
export function compiledRestJson(desc: DescMessage, message: Message): string {
  return writerOf(desc).write(message);
}

/** The REST JSON text of `message`: exactly JSON.stringify(restJsonByReflection(desc, message)). */
export function renderRestJson(desc: DescMessage, message: Message): string {
  try {
    return compiledRestJson(desc, message);
  } catch (err) {
    if (err instanceof NotWritable) return JSON.stringify(restJsonByReflection(desc, message));
    throw err;
  }
}

/** Whether `desc` has a compiled writer (else it is rendered by reflection); for tests. */
export function hasCompiledWriter(desc: DescMessage): boolean {
  return writerOf(desc).compiled;
}
