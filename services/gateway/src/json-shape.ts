import { fromJson, ScalarType, type DescEnum, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";

/**
 * REST JSON differs from canonical proto3 JSON in one way: enum values are written as the
 * lower-case suffix of their proto name ("full" for SAMPLING_STRATEGY_FULL), so documented bodies
 * stay as users know them. These helpers walk a JSON value along its message descriptor to
 * translate enums both ways and to report the first mistyped field by name before protobuf's own
 * parser sees the input.
 */

export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** Messages that have their own JSON form (Timestamp as a string, Struct as any object, ...). */
function hasWellKnownJson(message: DescMessage): boolean {
  return message.typeName.startsWith("google.protobuf.");
}

export function restEnumName(desc: DescEnum, number: number): string | null {
  const value = desc.values.find((v) => v.number === number);
  if (!value || number === 0) return null;
  return value.localName.toLowerCase();
}

/** Accepted REST names of an enum, for error messages and OpenAPI. */
export function restEnumNames(desc: DescEnum): string[] {
  return desc.values.filter((v) => v.number !== 0).map((v) => v.localName.toLowerCase());
}

function enumFromRest(desc: DescEnum, value: JsonValue, path: string): string {
  if (typeof value !== "string") {
    throw new FieldError(path, `must be one of ${restEnumNames(desc).join(", ")}`);
  }
  const lower = value.toLowerCase();
  const match = desc.values.find(
    (v) => v.number !== 0 && (v.localName.toLowerCase() === lower || v.name === value),
  );
  if (!match) {
    throw new FieldError(path, `unknown value "${value}"; expected one of ${restEnumNames(desc).join(", ")}`);
  }
  return match.name;
}

/** A proto3 JSON enum value (its proto name) as REST writes it: the lower-case suffix, null for zero. */
export function enumToRest(desc: DescEnum, value: JsonValue): JsonValue {
  if (typeof value !== "string") return value;
  const match = desc.values.find((v) => v.name === value);
  if (!match) return value;
  return match.number === 0 ? null : match.localName.toLowerCase();
}

const INT32_TYPES = new Set([ScalarType.INT32, ScalarType.SINT32, ScalarType.SFIXED32]);
const UINT32_TYPES = new Set([ScalarType.UINT32, ScalarType.FIXED32]);
const INT64_TYPES = new Set([ScalarType.INT64, ScalarType.SINT64, ScalarType.SFIXED64]);
const UINT64_TYPES = new Set([ScalarType.UINT64, ScalarType.FIXED64]);

function checkScalar(type: ScalarType, value: JsonValue, path: string): JsonValue {
  const integer = (min: number, max: number, label: string) => {
    const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n)) throw new FieldError(path, `must be ${label}`);
    if (n < min || n > max) throw new FieldError(path, `must be ${label} between ${min} and ${max}`);
    return n;
  };
  const bigInteger = (unsigned: boolean) => {
    // A JSON number past 2^53 has already been rounded by the parser: refuse it rather than store another value.
    if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw new FieldError(path, `must be a string (a JSON number beyond ±${Number.MAX_SAFE_INTEGER} loses precision)`);
    }
    const text = typeof value === "number" && Number.isInteger(value) ? String(value) : value;
    if (typeof text !== "string" || !(unsigned ? /^\d+$/ : /^-?\d+$/).test(text)) {
      throw new FieldError(path, unsigned ? "must be a non-negative integer" : "must be an integer");
    }
    const big = BigInt(text);
    const limit = unsigned ? 2n ** 64n - 1n : 2n ** 63n - 1n;
    if (big > limit || big < (unsigned ? 0n : -(2n ** 63n))) throw new FieldError(path, "is out of range");
    return text;
  };
  switch (true) {
    case type === ScalarType.STRING:
      if (typeof value !== "string") throw new FieldError(path, "must be a string");
      return value;
    case type === ScalarType.BOOL:
      if (typeof value !== "boolean") throw new FieldError(path, "must be true or false");
      return value;
    case type === ScalarType.BYTES:
      if (typeof value !== "string") throw new FieldError(path, "must be a base64 string");
      return value;
    case INT32_TYPES.has(type):
      return integer(-(2 ** 31), 2 ** 31 - 1, "an integer");
    case UINT32_TYPES.has(type):
      return integer(0, 2 ** 32 - 1, "a non-negative integer");
    case INT64_TYPES.has(type):
      return bigInteger(false);
    case UINT64_TYPES.has(type):
      return bigInteger(true);
    default: {
      // float / double
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n !== "number" || !Number.isFinite(n)) throw new FieldError(path, "must be a number");
      return n;
    }
  }
}

/** A malformed well-known value (e.g. a Timestamp that is not RFC 3339) named by its field. */
function checkWellKnown(desc: DescMessage, value: JsonValue, path: string): JsonValue {
  try {
    fromJson(desc, value);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new FieldError(path, message.replace(/^cannot decode [^:]*: /, ""));
  }
  return value;
}

type Direction = "in" | "out";

function convertSingular(field: DescField, kind: "scalar" | "enum" | "message", value: JsonValue, path: string, dir: Direction): JsonValue {
  if (kind === "enum") {
    const desc = field.enum!;
    return dir === "in" ? enumFromRest(desc, value, path) : enumToRest(desc, value);
  }
  if (kind === "message") {
    const desc = field.message!;
    if (hasWellKnownJson(desc)) return dir === "in" ? checkWellKnown(desc, value, path) : value;
    return convertMessage(desc, value, path, dir);
  }
  return dir === "in" ? checkScalar(field.scalar!, value, path) : value;
}

function isPlainObject(value: JsonValue): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function convertField(field: DescField, value: JsonValue, path: string, dir: Direction): JsonValue {
  if (value === null) return null;
  switch (field.fieldKind) {
    case "list": {
      if (!Array.isArray(value)) {
        if (dir === "in") throw new FieldError(path, "must be an array");
        return value;
      }
      return value.map((item, i) => convertSingular(field, field.listKind, item, `${path}[${i}]`, dir));
    }
    case "map": {
      if (!isPlainObject(value)) {
        if (dir === "in") throw new FieldError(path, "must be an object");
        return value;
      }
      const out: { [key: string]: JsonValue } = {};
      for (const [key, item] of Object.entries(value)) {
        out[key] = convertSingular(field, field.mapKind, item, `${path}.${key}`, dir);
      }
      return out;
    }
    default:
      return convertSingular(field, field.fieldKind, value, path, dir);
  }
}

function convertMessage(desc: DescMessage, value: JsonValue, prefix: string, dir: Direction): JsonValue {
  if (!isPlainObject(value)) {
    if (dir === "in") throw new FieldError(prefix || "(body)", "must be a JSON object");
    return value;
  }
  const out: { [key: string]: JsonValue } = {};
  for (const [key, item] of Object.entries(value)) {
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    const path = prefix ? `${prefix}.${key}` : key;
    if (!field) {
      if (dir === "in") throw new FieldError(path, "unknown field");
      out[key] = item;
      continue;
    }
    out[field.name] = convertField(field, item, path, dir);
  }
  return out;
}

/** REST request JSON → canonical proto3 JSON, rejecting unknown and mistyped fields by name. */
export function restToProtoJson(desc: DescMessage, value: JsonValue): JsonValue {
  return convertMessage(desc, value, "", "in");
}

/** Canonical proto3 JSON (proto field names) → REST JSON. */
export function protoToRestJson(desc: DescMessage, value: JsonValue): JsonValue {
  return convertMessage(desc, value, "", "out");
}
