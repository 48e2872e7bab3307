import type { Finding } from "./types.js";

export interface Candidate extends Finding {
  secret: boolean;
  priority: number;
}

/**
 * Non-overlapping findings in text order: credentials first, then longer spans (an email beats
 * the IP-like part of its domain, a card number beats the phone-like run inside it), then higher
 * priority, then the earlier start. Claimed characters are marked, so the cost is linear in the candidates' total
 * length rather than quadratic in their number.
 */
export function resolveOverlaps(candidates: Candidate[], textLength: number): Finding[] {
  // Most text has no candidate at all; a lone one cannot overlap anything.
  if (candidates.length <= 1) return candidates.map((c) => ({ type: c.type, start: c.start, end: c.end }));
  const ordered = [...candidates].sort(
    (a, b) =>
      Number(b.secret) - Number(a.secret) ||
      b.end - b.start - (a.end - a.start) ||
      b.priority - a.priority ||
      a.start - b.start,
  );
  const claimed = new Uint8Array(textLength);
  const kept: Finding[] = [];
  for (const c of ordered) {
    if (claimed.subarray(c.start, c.end).includes(1)) continue;
    claimed.fill(1, c.start, c.end);
    kept.push({ type: c.type, start: c.start, end: c.end });
  }
  return kept.sort((a, b) => a.start - b.start);
}

/**
 * Rebuilds the text from slices of the original, working from the last finding back to the
 * first: every offset refers to the untouched input, so a replacement of a different length can
 * never shift the position of another finding.
 */
export function replaceSpans(text: string, findings: readonly Finding[], replace: (f: Finding, value: string) => string): string {
  const parts: string[] = [];
  let tail = text.length;
  for (let i = findings.length - 1; i >= 0; i--) {
    const f = findings[i]!;
    parts.push(text.slice(f.end, tail), replace(f, text.slice(f.start, f.end)));
    tail = f.start;
  }
  parts.push(text.slice(0, tail));
  return parts.reverse().join("");
}
