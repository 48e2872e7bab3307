import { describe, expect, it } from "vitest";
import { DETECTOR_NAMES, detectorsFor } from "../src/detectors/index.js";
import { anyAnchorOf } from "../src/redactor.js";
import { generateCorpus } from "./corpus.js";

/*
 * redactText skips the detectors when one alternation of their anchors finds nothing; that may
 * only ever happen when no single anchor would have matched (then every detector's own scan is
 * empty anyway), or a finding would be lost.
 */
describe("the combined anchor", () => {
  const { positives, negatives } = generateCorpus();
  const fragments = ["@", "+1", "+0", "415-5550", "4111111111111", "4111-111", "DE89", "De89", "123-45-6789", "1.2.3.4", "1.2.3", ":ab:", "::", ":12345:",
    "eyJhbGciOi", "ewJ0eXAiOi", "-----BEGIN ", "sk-", "sk-ant-", "AKIA", "ASIA", "ghp_", "github_pat_", "xoxb-", "hooks.slack.com/", " ", "x", "9", "\n", "é"];
  let state = 7;
  const next = (n: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
  const generated = Array.from({ length: 5000 }, () => Array.from({ length: 1 + next(6) }, () => fragments[next(fragments.length)]).join(next(2) ? "" : " "));
  const texts = [...positives, ...negatives].map((s) => s.text).concat(generated);

  it("matches a text exactly when some detector's own anchor does, for every detector set", () => {
    const sets = [DETECTOR_NAMES, ...DETECTOR_NAMES.map((name) => [name]), ["email", "phone"], ["credit_card", "iban", "us_ssn"]] as const;
    const disagreements: string[] = [];
    for (const names of sets) {
      const detectors = detectorsFor(names);
      const any = anyAnchorOf(detectors)!;
      for (const text of texts) {
        if (any.test(text) !== detectors.some((d) => d.anchor.test(text))) disagreements.push(`${names.join(",")}: ${JSON.stringify(text)}`);
      }
    }
    expect(disagreements).toEqual([]);
  });

  it("finds every anchor-bearing fragment and nothing in plain prose", () => {
    const any = anyAnchorOf(detectorsFor(DETECTOR_NAMES))!;
    expect(texts.filter((text) => any.test(text)).length).toBeGreaterThan(1000);
    expect(any.test("the customer asked about order status, refund and shipping {\"limit\": 10}")).toBe(false);
  });
});
