import type { Interceptor } from "@connectrpc/connect";
import {
  getOption,
  isFieldSet,
  ScalarType,
  type DescField,
  type DescMessage,
  type Message,
  type MessageShape,
  type MessageValidType,
} from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { FeatureSet_FieldPresence, isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { createValidator, type ValidationResult, type Validator } from "@bufbuild/protovalidate";
import {
  EnumRulesSchema,
  field as fieldRulesOption,
  FieldRulesSchema,
  Ignore,
  message as messageRulesOption,
  MessageRulesSchema,
  oneof as oneofRulesOption,
  OneofRulesSchema,
  RepeatedRulesSchema,
  StringRulesSchema,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { invalidField } from "@clasper/core";
import { compileCelSubset, NotInSubset } from "./cel-subset.js";
import { firstNulString } from "./nul-strings.js";

/*
 * protovalidate matches `string.pattern` rules with a JavaScript port of RE2: linear time, but
 * about 2 µs a match, and IngestSpans matches three ids per span. Our patterns are anchored runs
 * of ASCII character sets ("^[0-9a-f]{32}$"), which mean the same to RE2 and to RegExp, so those
 * run on the platform engine. `nativePattern` accepts only that shape, and only when no
 * backtracking can cost more than linear time (no atom that can follow a variable run shares a
 * character with it), so RE2's guarantee still holds. Any other pattern makes the
 * native validator fail with an error, and the message type is validated with RE2 from then on.
 */

/** One pattern element: a set of ASCII characters (128 flags) repeated min..max times. */
interface Atom {
  set: boolean[];
  min: number;
  max: number;
}

/** RE2's repeat limit: larger counts are a syntax error there and must stay one. */
const MAX_REPEAT = 1000;
const LETTERS_AND_DIGITS = /^[A-Za-z0-9]$/;
const PUNCTUATION = /^[!-/:-@[-`{-~]$/;
/** Characters that stand for themselves outside a class in both syntaxes. */
const PLAIN = /^[A-Za-z0-9 !"#%&',\-/:;<=>@_`~]$/;
/** Characters that stand for themselves inside a class in both syntaxes (not first "^", not "-"). */
const PLAIN_IN_CLASS = /^[A-Za-z0-9 !"#$%&'()*+,./:;<=>?@^_`{|}~]$/;

const emptySet = (): boolean[] => new Array<boolean>(128).fill(false);
const charSet = (chars: string): boolean[] => {
  const set = emptySet();
  for (const c of chars) set[c.charCodeAt(0)] = true;
  return set;
};
const DIGITS = charSet("0123456789");

/** `\d` or `\` + punctuation at `i`: the set and the characters read; undefined for other escapes. */
function escapeAt(pattern: string, i: number): [boolean[], number] | undefined {
  const c = pattern[i + 1] ?? "";
  if (c === "d") return [DIGITS, 2];
  return PUNCTUATION.test(c) ? [charSet(c), 2] : undefined;
}

/** `[...]` at `i` (no negation, no nested classes): the set and the characters read. */
function classAt(pattern: string, i: number): [boolean[], number] | undefined {
  const set = emptySet();
  let j = i + 1;
  if (pattern[j] === "-") (set[45] = true), j++;
  while (j < pattern.length && pattern[j] !== "]") {
    const c = pattern[j]!;
    if (c === "\\") {
      const escaped = escapeAt(pattern, j);
      if (!escaped) return undefined;
      escaped[0].forEach((member, code) => member && (set[code] = true));
      j += escaped[1];
    } else if (c === "-" && pattern[j + 1] === "]") {
      set[45] = true;
      j++;
    } else if (LETTERS_AND_DIGITS.test(c) && pattern[j + 1] === "-" && LETTERS_AND_DIGITS.test(pattern[j + 2] ?? "")) {
      const from = c.charCodeAt(0);
      const to = pattern.charCodeAt(j + 2);
      if (from > to) return undefined;
      for (let code = from; code <= to; code++) set[code] = true;
      j += 3;
    } else if (PLAIN_IN_CLASS.test(c) && !(c === "^" && j === i + 1)) {
      set[c.charCodeAt(0)] = true;
      j++;
    } else {
      return undefined;
    }
  }
  return j < pattern.length && j > i + 1 ? [set, j + 1 - i] : undefined;
}

/** `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` at `i`: [min, max, characters read]; none: [1, 1, 0]. */
function quantifierAt(pattern: string, i: number): [number, number, number] | undefined {
  const c = pattern[i];
  if (c === "*") return [0, Infinity, 1];
  if (c === "+") return [1, Infinity, 1];
  if (c === "?") return [0, 1, 1];
  if (c !== "{") return [1, 1, 0];
  const m = /^\{(\d{1,4})(,(\d{0,4}))?\}/.exec(pattern.slice(i));
  if (!m) return undefined;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
  if (min > MAX_REPEAT || (max !== Infinity && (max > MAX_REPEAT || max < min))) return undefined;
  return [min, max, m[0].length];
}

function parseAtoms(pattern: string): Atom[] | undefined {
  if (!pattern.startsWith("^") || !pattern.endsWith("$") || pattern.endsWith("\\$")) return undefined;
  const body = pattern.slice(1, -1);
  const atoms: Atom[] = [];
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    const read = c === "[" ? classAt(body, i) : c === "\\" ? escapeAt(body, i) : PLAIN.test(c) ? ([charSet(c), 1] as [boolean[], number]) : undefined;
    if (!read) return undefined;
    i += read[1];
    const quantifier = quantifierAt(body, i);
    if (!quantifier) return undefined;
    i += quantifier[2];
    if (/^[*+?{]/.test(body.slice(i, i + 1))) return undefined; // "a+?" (lazy), "a**": left to RE2
    atoms.push({ set: read[0], min: quantifier[0], max: quantifier[1] });
  }
  return atoms;
}

/** The equivalent RegExp, or undefined when the pattern is outside the subset described above. */
export function nativePattern(pattern: string): RegExp | undefined {
  const atoms = parseAtoms(pattern);
  if (!atoms) return undefined;
  // A variable run must end where it does: no atom that can come next may take its characters.
  for (let k = 0; k < atoms.length; k++) {
    const { set, min, max } = atoms[k]!;
    if (min === max) continue;
    for (let next = k + 1; next < atoms.length; next++) {
      if (set.some((member, code) => member && atoms[next]!.set[code])) return undefined;
      if (atoms[next]!.min > 0) break;
    }
  }
  const hex = (code: number) => `\\x${code.toString(16).padStart(2, "0")}`;
  const source = atoms.map(({ set, min, max }) => {
    const members = set.flatMap((member, code) => (member ? [hex(code)] : [])).join("");
    return `[${members}]{${min},${max === Infinity ? "" : max}}`;
  });
  return new RegExp(`^${source.join("")}$`);
}

class NotNativePattern extends Error {}

/*
 * protovalidate walks every field of every message with a path object per step (about 20 µs per
 * span of IngestSpans, the largest CPU cost of ingest after decoding). Most of our rules are a
 * handful of kinds, so a message type whose rules are ALL of those kinds gets an acceptance
 * check compiled from the same rule options: plain property reads, no paths. The check can only
 * say "valid"; whenever it finds anything wrong the message goes through protovalidate, which
 * produces the violation (field path, message) exactly as before. So the rules and the errors
 * still come from protovalidate and the .proto files; the check must merely never accept what
 * protovalidate would refuse. A type with any other rule (CEL, oneof rules, numeric ranges,
 * well-known string formats, predefined rules, ...) is not compiled and always goes through
 * protovalidate. Supported, with protovalidate's semantics (planner.ts, condition.ts):
 *   field: required (message fields), ignore (all three values);
 *   string: min_len, max_len (code points), pattern (the native subset above);
 *   enum: defined_only;  repeated: min_items, max_items (no item rules);
 *   message fields, repeated messages and map values: the element type's own rules.
 */

/** True only when protovalidate would accept the message (of the type it was compiled for). */
type Accept = (message: Record<string, unknown>) => boolean;

class NotCompiled extends Error {}

/** Throws NotCompiled unless every rule set on `rules` is in `allowed` (no extensions either). */
function onlyRules(rules: Message, schema: DescMessage, allowed: readonly string[], where: string): void {
  if (rules.$unknown !== undefined && rules.$unknown.length > 0) throw new NotCompiled(`${where}: predefined rules`);
  for (const f of schema.fields) {
    if (isFieldSet(rules, f) && !allowed.includes(f.localName)) throw new NotCompiled(`${where}: ${schema.name}.${f.localName}`);
  }
}

/** Code points, as protovalidate counts string lengths (a surrogate pair is one). */
function codePoints(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

/** A string of `min`..`max` code points (no bound when undefined); avoids counting when the length decides. */
function lengthWithin(value: string, min: number | undefined, max: number | undefined): boolean {
  const units = value.length;
  // Every code point is one or two UTF-16 units.
  if ((min === undefined || units >= 2 * min) && (max === undefined || units <= max)) return true;
  const n = codePoints(value);
  return (min === undefined || n >= min) && (max === undefined || n <= max);
}

function compileString(field: DescField, rules: Message & { minLen?: bigint; maxLen?: bigint; pattern?: string }): ((value: string) => boolean) | undefined {
  onlyRules(rules, StringRulesSchema, ["minLen", "maxLen", "pattern", "example"], field.toString());
  const min = isFieldSet(rules, StringRulesSchema.field.minLen) ? Number(rules.minLen) : undefined;
  const max = isFieldSet(rules, StringRulesSchema.field.maxLen) ? Number(rules.maxLen) : undefined;
  let re: RegExp | undefined;
  if (isFieldSet(rules, StringRulesSchema.field.pattern)) {
    re = nativePattern(rules.pattern as string);
    if (re === undefined) throw new NotCompiled(`${field.toString()}: pattern outside the native subset`);
  }
  if (min === undefined && max === undefined && re === undefined) return undefined;
  return (value) => (min === undefined && max === undefined ? true : lengthWithin(value, min, max)) && (re === undefined || re.test(value));
}

/** The rule kind (FieldRules.type case) that goes with each numeric scalar type. */
const NUMERIC_RULES = new Map<ScalarType, string>([
  [ScalarType.INT32, "int32"],
  [ScalarType.INT64, "int64"],
  [ScalarType.UINT32, "uint32"],
  [ScalarType.UINT64, "uint64"],
  [ScalarType.SINT32, "sint32"],
  [ScalarType.SINT64, "sint64"],
  [ScalarType.FIXED32, "fixed32"],
  [ScalarType.FIXED64, "fixed64"],
  [ScalarType.SFIXED32, "sfixed32"],
  [ScalarType.SFIXED64, "sfixed64"],
  [ScalarType.FLOAT, "float"],
  [ScalarType.DOUBLE, "double"],
]);

type Bound = { case: undefined } | { case: "gt" | "gte" | "lt" | "lte"; value: number | bigint };
type NumericRules = Message & { greaterThan: Bound; lessThan: Bound };

/**
 * A number within the rule's bounds (native/numeric.ts evalRange). Only what our contracts use
 * (gt, gte, lte, and a lower bound not above the upper one), so that the equivalence test
 * exercises all of it; NaN is refused (protovalidate fails a float range for NaN).
 */
function compileRange(field: DescField, ruleKind: string, rules: NumericRules): ((value: number | bigint) => boolean) | undefined {
  const schema = FieldRulesSchema.fields.find((f) => f.localName === ruleKind)?.message;
  if (!schema || (field.fieldKind === "scalar" && field.longAsString)) throw new NotCompiled(`${field.toString()}: ${ruleKind} rules`);
  onlyRules(rules, schema, ["gt", "gte", "lte", "example"], field.toString());
  const lo = rules.greaterThan.case === undefined ? undefined : rules.greaterThan;
  const hi = rules.lessThan.case === undefined ? undefined : rules.lessThan;
  if (lo && hi && hi.value < lo.value) throw new NotCompiled(`${field.toString()}: exclusive range`);
  const bound = lo?.value ?? hi?.value;
  if (bound === undefined) return undefined;
  return (v) => {
    if (typeof v !== typeof bound || (typeof v === "number" && Number.isNaN(v))) return false;
    if (lo && (lo.case === "gt" ? v <= lo.value : v < lo.value)) return false;
    return !(hi && v > hi.value);
  };
}

/** The checks of one field (undefined: none), reading the message object directly. */
function compileField(field: DescField, compileType: (desc: DescMessage) => Accept): Accept | undefined {
  const rules = getOption(field, fieldRulesOption);
  const where = field.toString();
  onlyRules(rules, FieldRulesSchema, ["required", "ignore", "string", "enum", "repeated", ...NUMERIC_RULES.values()], where);
  if (rules.ignore === Ignore.ALWAYS) return undefined;
  const ruleKind = rules.type.case;
  const oneof = field.oneof;
  // The field's value; undefined for an unset oneof member or message field.
  const get = (m: Record<string, unknown>): unknown => {
    if (oneof === undefined) return m[field.localName];
    const selected = m[oneof.localName] as { case: string | undefined; value?: unknown };
    return selected.case === field.localName ? selected.value : undefined;
  };
  if (rules.required && (field.fieldKind === "list" || field.fieldKind === "map")) throw new NotCompiled(`${where}: required on a ${field.fieldKind} field`);

  switch (field.fieldKind) {
    case "message": {
      if (ruleKind !== undefined) throw new NotCompiled(`${where}: ${ruleKind} rules`);
      const sub = compileType(field.message);
      const required = rules.required;
      return (m) => {
        const value = get(m);
        return value === undefined ? !required : sub(value as Record<string, unknown>);
      };
    }
    case "list": {
      if (ruleKind !== undefined && ruleKind !== "repeated") throw new NotCompiled(`${where}: ${ruleKind} rules`);
      let min = 0;
      let max = Infinity;
      if (rules.type.case === "repeated") {
        const r = rules.type.value;
        onlyRules(r, RepeatedRulesSchema, ["minItems", "maxItems"], where);
        if (isFieldSet(r, RepeatedRulesSchema.field.minItems)) min = Number(r.minItems);
        if (isFieldSet(r, RepeatedRulesSchema.field.maxItems)) max = Number(r.maxItems);
      }
      const item = field.listKind === "message" ? compileType(field.message) : undefined;
      // IGNORE_IF_ZERO_VALUE: an empty list is not checked at all.
      const skipEmpty = rules.ignore === Ignore.IF_ZERO_VALUE;
      return (m) => {
        const list = m[field.localName] as readonly unknown[];
        if (list.length === 0 && skipEmpty) return true;
        if (list.length < min || list.length > max) return false;
        if (item !== undefined) for (const element of list) if (!item(element as Record<string, unknown>)) return false;
        return true;
      };
    }
    case "map": {
      if (ruleKind !== undefined) throw new NotCompiled(`${where}: ${ruleKind} rules`);
      if (field.mapKind !== "message") return undefined;
      const value = compileType(field.message);
      return (m) => Object.values(m[field.localName] as Record<string, unknown>).every((v) => value(v as Record<string, unknown>));
    }
    case "enum":
    case "scalar": {
      let test: ((value: never) => boolean) | undefined;
      if (field.fieldKind === "enum") {
        if (ruleKind !== undefined && ruleKind !== "enum") throw new NotCompiled(`${where}: ${ruleKind} rules`);
        if (rules.type.case === "enum") {
          onlyRules(rules.type.value, EnumRulesSchema, ["definedOnly", "example"], where);
          if (rules.type.value.definedOnly) {
            const defined = new Set(field.enum.values.map((v) => v.number));
            test = (value: number) => defined.has(value);
          }
        }
      } else if (field.scalar === ScalarType.STRING) {
        if (ruleKind !== undefined && ruleKind !== "string") throw new NotCompiled(`${where}: ${ruleKind} rules`);
        if (rules.type.case === "string") test = compileString(field, rules.type.value);
      } else if (ruleKind !== undefined && ruleKind === NUMERIC_RULES.get(field.scalar)) {
        test = compileRange(field, ruleKind, rules.type.value as NumericRules);
      } else if (ruleKind !== undefined) {
        throw new NotCompiled(`${where}: ${ruleKind} rules`);
      }
      const required = rules.required;
      if (test === undefined && !required) return undefined;
      const check = test ?? (() => true);
      // condition.ts ignoreScalarOrEnumField: an implicit-presence field is checked even when it
      // holds the zero value, unless IGNORE_IF_ZERO_VALUE; a field with presence only when set
      // (for an implicit one, set means not zero). `required` means set.
      if (field.presence === FeatureSet_FieldPresence.IMPLICIT && oneof === undefined && rules.ignore !== Ignore.IF_ZERO_VALUE && !required) {
        return (m) => check(m[field.localName] as never);
      }
      return (m) => (isFieldSet(m as Message, field) ? check(get(m) as never) : !required);
    }
  }
}

function celRule(desc: DescMessage, expression: string): Accept {
  try {
    return compileCelSubset(desc, expression);
  } catch (err) {
    if (err instanceof NotInSubset) throw new NotCompiled(`${desc.typeName}: ${err.message}`);
    throw err;
  }
}

/**
 * Compiles acceptance checks per message type; undefined for a type (or a type it contains)
 * with a rule outside the supported kinds. Cyclic types (a value that holds a list of values)
 * compile once: the cache holds the type's check before its fields are compiled.
 */
const JSON_REPRESENTED_TYPES = new Set(["google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"]);
const acceptAnything: Accept = () => true;

function acceptanceCompiler(): (desc: DescMessage) => Accept | undefined {
  const compiled = new Map<DescMessage, Accept | null>();
  const compileType = (desc: DescMessage): Accept => {
    // protobuf-es holds these as plain JSON or primitives in a message field, not as messages
    // (there is no `fields` on a JsonObject to walk); they carry no rules, so they always pass.
    if (JSON_REPRESENTED_TYPES.has(desc.typeName) || isWrapperDesc(desc)) return acceptAnything;
    const existing = compiled.get(desc);
    if (existing === null) throw new NotCompiled(desc.typeName);
    if (existing !== undefined) return existing;
    let checks: Accept[] = [];
    const accept: Accept = (m) => {
      for (const check of checks) if (!check(m)) return false;
      return true;
    };
    compiled.set(desc, accept);
    try {
      const messageRules = getOption(desc, messageRulesOption);
      onlyRules(messageRules, MessageRulesSchema, ["cel"], desc.typeName);
      for (const oneof of desc.oneofs) onlyRules(getOption(oneof, oneofRulesOption), OneofRulesSchema, [], oneof.toString());
      checks = desc.fields.map((f) => compileField(f, compileType)).filter((c): c is Accept => c !== undefined);
      checks.push(...messageRules.cel.map((rule) => celRule(desc, rule.expression)));
    } catch (err) {
      compiled.set(desc, null);
      throw err;
    }
    return accept;
  };
  return (desc) => {
    try {
      return compileType(desc);
    } catch {
      // NotCompiled, or anything unexpected: protovalidate alone still gives the right answer.
      // Types compiled along the way as part of this one may hold checks that call it.
      for (const [d, c] of compiled) if (c !== null && d !== desc) compiled.delete(d);
      compiled.set(desc, null);
      return undefined;
    }
  };
}

/**
 * The acceptance check the fast validator compiles for `desc` (undefined: the type always goes
 * through protovalidate). It says true only for messages protovalidate accepts; for tests.
 */
export function acceptanceCheck(desc: DescMessage): ((message: Message) => boolean) | undefined {
  const accept = acceptanceCompiler()(desc);
  return accept && ((message) => accept(message as unknown as Record<string, unknown>));
}

/**
 * The default validator's rules and messages, with the patterns of the subset on RegExp; message
 * types whose rules use another pattern go to RE2 (the default validator) once one is seen. A
 * message the compiled acceptance check passes is valid without walking it.
 */
export function createFastValidator(): Validator {
  const compiled = new Map<string, RegExp>();
  const native = createValidator({
    regexMatch(pattern, against) {
      let re = compiled.get(pattern);
      if (re === undefined) {
        re = nativePattern(pattern);
        if (re === undefined) throw new NotNativePattern(pattern);
        compiled.set(pattern, re);
      }
      return re.test(against);
    },
  });
  const re2 = createValidator();
  const needsRe2 = new WeakSet<DescMessage>();
  const compileAcceptance = acceptanceCompiler();
  const acceptance = new WeakMap<DescMessage, Accept | null>();
  return {
    validate<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): ValidationResult<MessageValidType<Desc>, MessageShape<Desc>> {
      let accept = acceptance.get(schema);
      if (accept === undefined) acceptance.set(schema, (accept = compileAcceptance(schema) ?? null));
      if (accept !== null && message.$typeName === schema.typeName && accept(message as unknown as Record<string, unknown>)) {
        // What protovalidate returns for a valid message: the same object, typed as valid.
        return { kind: "valid", message: message as MessageValidType<Desc>, error: undefined, violations: undefined };
      }
      if (!needsRe2.has(schema)) {
        const result = native.validate(schema, message);
        if (result.kind !== "error") return result;
        needsRe2.add(schema);
      }
      return re2.validate(schema, message);
    },
  };
}

/**
 * Enforces the protovalidate rules written in the .proto files on every request, and reports the
 * first violation as our ErrorInfo (field path + reason) so every caller, not only the gateway,
 * gets the same "which field, why" answer. A valid request whose strings hold U+0000 is refused
 * the same way (nul-strings.ts): PostgreSQL cannot store that character. @connectrpc/validate only attaches buf.validate
 * Violations, which the gateway would have to re-interpret.
 */
export function validationInterceptor(validator: Validator = createFastValidator()): Interceptor {
  const check = (schema: DescMessage, message: Parameters<Validator["validate"]>[1]) => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") {
      const nul = firstNulString(schema, message);
      if (nul !== undefined) throw invalidField(nul, "must not contain the NUL character (U+0000)");
      return;
    }
    if (result.kind === "invalid") {
      const first = result.error.violations[0];
      if (first) {
        const field = pathToString(first.field);
        throw invalidField(field === "" ? "(request)" : field, first.message);
      }
    }
    throw result.error;
  };
  return (next) => (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    const source = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const message of source) {
          check(req.method.input, message);
          yield message;
        }
      })(),
    });
  };
}
