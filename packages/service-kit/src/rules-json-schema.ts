import { getOption, isFieldSet, ScalarType, type DescField, type Message } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import {
  field as fieldRulesOption,
  Ignore,
  MapRulesSchema,
  RepeatedRulesSchema,
  StringRulesSchema,
  type FieldRules,
  type StringRules,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

type Schema = Record<string, unknown>;

/** What a field's protovalidate rules add to its JSON Schema: value keywords, and whether it must be present. */
export interface FieldRulesSchema {
  /** Keywords for the field's value (merged into its type schema; for a list or map, into the container). */
  keywords: Schema;
  /** For a list or map: keywords for each item / value. */
  items?: Schema;
  /** For a map: keywords for each key (JSON Schema `propertyNames`). */
  keys?: Schema;
  /** The field must be given: `required`, or its zero value breaks its own rules and is checked. */
  required: boolean;
}

type Bound = { case: undefined } | { case: "gt" | "gte" | "lt" | "lte"; value: number | bigint };
type NumericRules = Message & { greaterThan: Bound; lessThan: Bound; in: (number | bigint)[] };

function stringKeywords(rules: StringRules): Schema {
  const out: Schema = {};
  if (isFieldSet(rules, StringRulesSchema.field.minLen)) out["minLength"] = Number(rules.minLen);
  if (isFieldSet(rules, StringRulesSchema.field.maxLen)) out["maxLength"] = Number(rules.maxLen);
  if (isFieldSet(rules, StringRulesSchema.field.len)) out["minLength"] = out["maxLength"] = Number(rules.len);
  if (isFieldSet(rules, StringRulesSchema.field.pattern)) out["pattern"] = rules.pattern;
  if (isFieldSet(rules, StringRulesSchema.field.const)) out["const"] = rules.const;
  if (rules.in.length > 0) out["enum"] = [...rules.in];
  return out;
}

function numericKeywords(rules: NumericRules): Schema {
  const out: Schema = {};
  const { greaterThan: low, lessThan: high } = rules;
  if (low.case === "gt") out["exclusiveMinimum"] = Number(low.value);
  if (low.case === "gte") out["minimum"] = Number(low.value);
  if (high.case === "lt") out["exclusiveMaximum"] = Number(high.value);
  if (high.case === "lte") out["maximum"] = Number(high.value);
  // A 64-bit value may also come as its decimal string.
  if (rules.in.length > 0) out["enum"] = rules.in.flatMap((n) => (typeof n === "bigint" ? [Number(n), String(n)] : [n]));
  return out;
}

/** The keywords of scalar rules (string or numeric), none for other kinds. */
function scalarKeywords(rules: FieldRules): Schema {
  if (rules.type.case === "string") return stringKeywords(rules.type.value);
  if (rules.type.case === undefined || rules.type.case === "enum" || rules.type.case === "repeated" || rules.type.case === "map") return {};
  const value = rules.type.value as unknown as Partial<NumericRules>;
  return value.greaterThan && value.lessThan ? numericKeywords(value as NumericRules) : {};
}

/** Whether the scalar's zero value ("" or 0) satisfies the keywords. */
function zeroPasses(field: DescField, keywords: Schema): boolean {
  const zero: string | number = field.scalar === ScalarType.STRING ? "" : 0;
  if (typeof zero === "string") {
    if (((keywords["minLength"] as number | undefined) ?? 0) > 0) return false;
    if (typeof keywords["pattern"] === "string" && !safeTest(keywords["pattern"], "")) return false;
  } else {
    if (keywords["minimum"] !== undefined && 0 < (keywords["minimum"] as number)) return false;
    if (keywords["exclusiveMinimum"] !== undefined && 0 <= (keywords["exclusiveMinimum"] as number)) return false;
    if (keywords["maximum"] !== undefined && 0 > (keywords["maximum"] as number)) return false;
    if (keywords["exclusiveMaximum"] !== undefined && 0 >= (keywords["exclusiveMaximum"] as number)) return false;
  }
  if (keywords["const"] !== undefined && keywords["const"] !== zero) return false;
  if (Array.isArray(keywords["enum"]) && !keywords["enum"].includes(zero)) return false;
  return true;
}

function safeTest(pattern: string, value: string): boolean {
  try {
    return new RegExp(pattern, "u").test(value);
  } catch {
    return true; // an RE2-only pattern: leave presence undocumented rather than guess
  }
}

/**
 * The JSON Schema a field's protovalidate rules amount to, for the OpenAPI document: string
 * lengths, patterns and enumerations, numeric bounds, list and map sizes, and presence. Rules JSON
 * Schema cannot say (message-level CEL, byte lengths) are left out, so the document may accept
 * what validation refuses, never the reverse. A scalar the rules skip at its zero value
 * (IGNORE_IF_ZERO_VALUE) also accepts that zero value.
 */
export function fieldRulesSchema(field: DescField): FieldRulesSchema | undefined {
  const rules = getOption(field, fieldRulesOption);
  if (rules.ignore === Ignore.ALWAYS) return undefined;
  // A oneof member is checked whenever it is set, zero included; left out, it is simply absent.
  const skipZero = rules.ignore === Ignore.IF_ZERO_VALUE;
  switch (field.fieldKind) {
    case "scalar": {
      const keywords = scalarKeywords(rules);
      const implicit = field.presence === FeatureSet_FieldPresence.IMPLICIT && field.oneof === undefined;
      const zeroChecked = implicit && !skipZero;
      const required = rules.required || (zeroChecked && !zeroPasses(field, keywords));
      if (Object.keys(keywords).length === 0) return required ? { keywords, required } : undefined;
      if (skipZero && !zeroPasses(field, keywords)) {
        const zero = field.scalar === ScalarType.STRING ? [""] : [0, "0"];
        return { keywords: { anyOf: [...zero.map((value) => ({ const: value })), keywords] }, required };
      }
      return { keywords, required };
    }
    case "list": {
      const keywords: Schema = {};
      let items: Schema | undefined;
      if (rules.type.case === "repeated") {
        const r = rules.type.value;
        if (isFieldSet(r, RepeatedRulesSchema.field.minItems) && !skipZero) keywords["minItems"] = Number(r.minItems);
        if (isFieldSet(r, RepeatedRulesSchema.field.maxItems)) keywords["maxItems"] = Number(r.maxItems);
        if (r.unique) keywords["uniqueItems"] = true;
        if (r.items) items = scalarKeywords(r.items);
      }
      // Left out, a list is empty: a minimum of one or more makes it required.
      return { keywords, ...(items && Object.keys(items).length > 0 ? { items } : {}), required: ((keywords["minItems"] as number | undefined) ?? 0) > 0 };
    }
    case "map": {
      const keywords: Schema = {};
      let items: Schema | undefined;
      let keys: Schema | undefined;
      if (rules.type.case === "map") {
        const r = rules.type.value;
        if (isFieldSet(r, MapRulesSchema.field.minPairs) && !skipZero) keywords["minProperties"] = Number(r.minPairs);
        if (isFieldSet(r, MapRulesSchema.field.maxPairs)) keywords["maxProperties"] = Number(r.maxPairs);
        if (r.keys) keys = scalarKeywords(r.keys);
        if (r.values) items = scalarKeywords(r.values);
      }
      return {
        keywords,
        ...(items && Object.keys(items).length > 0 ? { items } : {}),
        ...(keys && Object.keys(keys).length > 0 ? { keys } : {}),
        required: ((keywords["minProperties"] as number | undefined) ?? 0) > 0,
      };
    }
    default:
      return rules.required ? { keywords: {}, required: true } : undefined;
  }
}
