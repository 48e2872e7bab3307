import { describe, expect, it } from "vitest";
import { createRedactor, DETECTOR_NAMES, type Finding } from "../src/index.js";
import { type Expected, generateCorpus, type Sample } from "./corpus.js";

interface Tally {
  tp: number;
  fn: number;
  fp: number;
}

const same = (f: Finding, e: Expected) => f.type === e.type && f.start === e.start && f.end === e.end;

function score(samples: Sample[]): { byType: Map<string, Tally>; misses: string[] } {
  const redactor = createRedactor();
  const byType = new Map<string, Tally>(DETECTOR_NAMES.map((t) => [t, { tp: 0, fn: 0, fp: 0 }]));
  const misses: string[] = [];
  for (const sample of samples) {
    const { findings } = redactor.redactText(sample.text);
    for (const e of sample.expected) {
      const hit = findings.some((f) => same(f, e));
      byType.get(e.type)![hit ? "tp" : "fn"]++;
      if (!hit) misses.push(`FN ${e.type} ${JSON.stringify(sample.text.slice(e.start, e.end))} in ${JSON.stringify(sample.text)}`);
    }
    for (const f of findings) {
      if (sample.expected.some((e) => same(f, e))) continue;
      byType.get(f.type)!.fp++;
      misses.push(`FP ${f.type} ${JSON.stringify(sample.text.slice(f.start, f.end))} (${sample.family}) in ${JSON.stringify(sample.text)}`);
    }
  }
  return { byType, misses };
}

const ratio = (num: number, den: number) => (den === 0 ? 1 : num / den);

function table(byType: Map<string, Tally>, total: Tally): string {
  const rows = [...byType, ["overall", total] as const].map(([type, t]) => [
    type,
    String(t.tp + t.fn),
    String(t.tp),
    String(t.fn),
    String(t.fp),
    ratio(t.tp, t.tp + t.fn).toFixed(3),
    ratio(t.tp, t.tp + t.fp).toFixed(3),
  ]);
  const head = ["type", "expected", "tp", "fn", "fp", "recall", "precision"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

describe("labelled corpus", () => {
  const { positives, negatives } = generateCorpus();
  const { byType, misses } = score([...positives, ...negatives]);
  const total = [...byType.values()].reduce((a, t) => ({ tp: a.tp + t.tp, fn: a.fn + t.fn, fp: a.fp + t.fp }), { tp: 0, fn: 0, fp: 0 });

  it("has several hundred samples on each side", () => {
    const expectedValues = positives.reduce((n, s) => n + s.expected.length, 0);
    console.log(`corpus: ${positives.length} positive samples (${expectedValues} labelled values), ${negatives.length} negative samples`);
    expect(expectedValues).toBeGreaterThanOrEqual(300);
    expect(negatives.length).toBeGreaterThanOrEqual(300);
    for (const type of DETECTOR_NAMES) expect(byType.get(type)!.tp + byType.get(type)!.fn).toBeGreaterThanOrEqual(25);
  });

  it("reaches recall >= 0.99 and precision >= 0.95 per type and overall", () => {
    console.log(`${table(byType, total)}\n${misses.slice(0, 40).join("\n")}`);
    for (const [type, t] of [...byType, ["overall", total] as const]) {
      expect.soft(ratio(t.tp, t.tp + t.fn), `${type} recall`).toBeGreaterThanOrEqual(0.99);
      expect.soft(ratio(t.tp, t.tp + t.fp), `${type} precision`).toBeGreaterThanOrEqual(0.95);
    }
  });
});
