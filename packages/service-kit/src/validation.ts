import type { Interceptor } from "@connectrpc/connect";
import type { DescMessage } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { invalidField } from "@clasper/core";

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

/**
 * The default validator's rules and messages, with the patterns of the subset on RegExp; message
 * types whose rules use another pattern go to RE2 (the default validator) once one is seen.
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
  return {
    validate(schema, message) {
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
 * gets the same "which field, why" answer. @connectrpc/validate only attaches buf.validate
 * Violations, which the gateway would have to re-interpret.
 */
export function validationInterceptor(validator: Validator = createFastValidator()): Interceptor {
  const check = (schema: DescMessage, message: Parameters<Validator["validate"]>[1]) => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") return;
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
