import { RE2JS } from "re2js";
import { DETECTOR_NAMES, type Span } from "./detectors/index.js";
import type { CustomRule, DetectorName, RedactionStrategy } from "./types.js";

const NAME = /^[a-z][a-z0-9_]{0,63}$/;
const MAX_PATTERN_CHARS = 1024;
const MAX_REPLACEMENT_CHARS = 256;
/** Compiled-program cap: keeps a tenant's rule from costing megabytes per redactor. */
const MAX_PROGRAM_SIZE = 20_000;
export const STRATEGIES: readonly RedactionStrategy[] = ["mask", "hash", "drop", "summarize"];

/** Says what RE2 cannot do in words a rule author recognises, before the parser's message. */
function unsupportedFeature(pattern: string): string | undefined {
  if (/\\[1-9]|\\k[<{']/.test(pattern)) return "backreferences are not supported (RE2 syntax)";
  if (/\(\?<?[=!]/.test(pattern)) return "lookahead and lookbehind are not supported (RE2 syntax)";
  return undefined;
}

function compile(pattern: string): RE2JS | string {
  const unsupported = unsupportedFeature(pattern);
  if (unsupported) return unsupported;
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    return `invalid RE2 pattern: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function ruleProblem(rule: CustomRule): string | RE2JS {
  if (typeof rule !== "object" || rule === null) return "rule must be an object";
  if (typeof rule.name !== "string" || !NAME.test(rule.name)) {
    return "name must be 1-64 characters of a-z, 0-9 and _, starting with a letter";
  }
  if ((DETECTOR_NAMES as readonly string[]).includes(rule.name as DetectorName)) {
    return `name "${rule.name}" is a built-in detector`;
  }
  if (rule.strategy !== undefined && !STRATEGIES.includes(rule.strategy)) {
    return `strategy must be one of ${STRATEGIES.join(", ")}`;
  }
  if (rule.replacement !== undefined && (typeof rule.replacement !== "string" || rule.replacement.length > MAX_REPLACEMENT_CHARS)) {
    return `replacement must be a string of at most ${MAX_REPLACEMENT_CHARS} characters`;
  }
  if (typeof rule.pattern !== "string" || rule.pattern.length === 0) return "pattern must be a non-empty string";
  if (rule.pattern.length > MAX_PATTERN_CHARS) return `pattern is longer than ${MAX_PATTERN_CHARS} characters`;
  const re = compile(rule.pattern);
  if (typeof re === "string") return re;
  if (re.matcher("").programSize() > MAX_PROGRAM_SIZE) return "pattern compiles to too large a program";
  if (re.matches("")) return "pattern matches the empty string";
  return re;
}

/** Why a custom rule is unusable, or undefined when it is fine. */
export function validateCustomRule(rule: CustomRule): string | undefined {
  const result = ruleProblem(rule);
  return typeof result === "string" ? result : undefined;
}

/** A validated rule, compiled once; matching runs on RE2 automata, linear in the input. */
export interface CompiledRule {
  readonly rule: CustomRule;
  find(text: string): Span[];
}

export function compileRule(rule: CustomRule): CompiledRule | string {
  const re = ruleProblem(rule);
  if (typeof re === "string") return re;
  return {
    rule,
    find(text) {
      const spans: Span[] = [];
      const matcher = re.matcher(text);
      while (matcher.find()) {
        const start = matcher.start();
        const end = matcher.end();
        if (end > start) spans.push({ start, end });
      }
      return spans;
    },
  };
}
