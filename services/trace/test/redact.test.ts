import { describe, expect, it } from "vitest";
import { createRedactor, type Redactor } from "@clasper/redaction";
import { BatchRedactor } from "../src/ingest/redact.js";

/** The built-in redactor, counting the texts it is asked to scan. */
function counting(): { redactor: Redactor; scanned: string[] } {
  const inner = createRedactor({ strategy: "mask" });
  const scanned: string[] = [];
  return {
    scanned,
    redactor: { ...inner, redactText: (text) => (scanned.push(text), inner.redactText(text)) },
  };
}

describe("BatchRedactor (unit)", () => {
  it("gives every value its own redaction, however values repeat across keys", () => {
    const { redactor } = counting();
    const batch = new BatchRedactor(redactor);
    const reference = createRedactor({ strategy: "mask" });
    const values = ["mail jane@example.com", "mail john@example.com", "plain", "mail jane@example.com", "call +1 415-555-0132", "plain"];
    for (let round = 0; round < 3; round++) {
      for (const [i, value] of values.entries()) {
        for (const key of ["a", "b", i % 2 ? "a" : "c"]) expect(batch.text(key, value).text).toBe(reference.redactText(value).text);
      }
    }
    expect(batch.text("a", "mail jane@example.com").types).toEqual(["email"]);
    expect(batch.text("a", "plain").types).toEqual([]);
  });

  it("scans a value repeated under one key once, and one evicted by newer values again", () => {
    const { redactor, scanned } = counting();
    const batch = new BatchRedactor(redactor);
    const history = JSON.stringify([{ role: "user", parts: [{ type: "text", content: "x".repeat(2000) }] }]);
    for (let i = 0; i < 3; i++) batch.text("gen_ai.input.messages", history);
    expect(scanned).toEqual([history]);
    // Values of the same length that differ only at the end are told apart.
    const lookalike = history.slice(0, -3) + "}]x";
    expect(batch.text("gen_ai.input.messages", lookalike).text).toBe(lookalike);
    for (const n of [1, 2, 3, 4]) batch.text("gen_ai.input.messages", `other ${n}`);
    batch.text("gen_ai.input.messages", history);
    expect(scanned.filter((text) => text === history)).toHaveLength(2);
  });
});
