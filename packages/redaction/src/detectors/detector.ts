import type { DetectorName } from "../types.js";

export interface Span {
  start: number;
  end: number;
}

/**
 * A built-in detector: a candidate pattern that finds plausible text cheaply, then a check that
 * validates it (checksum, range, parse). Every quantifier in a pattern is bounded and repeated
 * groups consume an unambiguous token per iteration, so V8's backtracking engine stays linear.
 */
export interface Detector {
  readonly name: DetectorName;
  /** Global regex; never matches the empty string. */
  readonly pattern: RegExp;
  /**
   * Non-global regex for what every accepted value contains (a literal prefix, a separator, ...).
   * Text without it is not scanned: the patterns open with lookbehinds and bounded runs, so V8
   * tries them at every position, while an anchor it finds with a quick scan. An anchor that some
   * value lacks would lose that value; detectors.test.ts checks them on the corpus.
   */
  readonly anchor: RegExp;
  /**
   * Length of the accepted prefix of a candidate, 0 to reject it. Absent: the whole candidate is
   * accepted.
   */
  readonly accept?: (candidate: string) => number;
  /**
   * Credentials win overlaps outright: a token used as URL userinfo ("ghp_…@github.com") is a
   * token, not the local part of an email.
   */
  readonly secret?: boolean;
  /** Breaks ties between equally long overlapping findings; higher wins. */
  readonly priority: number;
}

/** Accepts the whole candidate when `valid` holds. */
export function whole(valid: (candidate: string) => boolean): (candidate: string) => number {
  return (candidate) => (valid(candidate) ? candidate.length : 0);
}

/**
 * Length of the longest prefix of `candidate` that ends just before a separator (or is the whole
 * candidate) and is `valid`, 0 if none is. Lets a pattern run greedily over grouped digits and
 * the check find where the value really ends ("+1 415 555 0123 42", "4111 1111 1111 1111 2024").
 */
export function longestValidPrefix(candidate: string, separators: string, valid: (prefix: string) => boolean): number {
  if (valid(candidate)) return candidate.length;
  for (let i = candidate.length - 1; i > 0; i--) {
    const cutsHere = separators.includes(candidate[i]!) && !separators.includes(candidate[i - 1]!);
    if (cutsHere && valid(candidate.slice(0, i))) return i;
  }
  return 0;
}

/**
 * Every accepted span of one detector, left to right. A rejected candidate is retried one
 * character later, so an invalid prefix (an order number in front of a card) cannot hide a valid
 * value that starts inside it.
 */
export function scan(detector: Detector, text: string): Span[] {
  const spans: Span[] = [];
  if (!detector.anchor.test(text)) return spans;
  const re = detector.pattern;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const length = detector.accept ? detector.accept(m[0]) : m[0].length;
    if (length > 0) {
      spans.push({ start: m.index, end: m.index + length });
      re.lastIndex = m.index + length;
    } else {
      re.lastIndex = m.index + 1;
    }
  }
  return spans;
}
