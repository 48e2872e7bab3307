import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SpanSchema } from "@clasper/proto";
import { ATTR } from "@clasper/telemetry";
import { assembleTraceDeltas, riskLevelOf, skillVersionsJson, traceStatus } from "../src/ingest/assemble.js";
import { INGEST_LIMITS, TRUNCATION_MARKER, truncateValue } from "../src/ingest/limits.js";
import { isoMicros, normalizeSpan } from "../src/ingest/normalize.js";
import { inSample } from "../src/ingest/sampling.js";
import { attributes, execution, shuffled } from "./ingest-fixtures.js";

const normalized = (spans = execution({ error: "boom" })) =>
  spans.map((s, i) => ({ span: normalizeSpan(create(SpanSchema, s), i), redactionTypes: new Set<string>(i % 2 ? ["email"] : []) }));

describe("span → trace assembly (unit)", () => {
  it("folds the spans of a trace to the same delta in any order", () => {
    const spans = normalized();
    const reference = assembleTraceDeltas(spans);
    for (let seed = 1; seed <= 20; seed++) expect(assembleTraceDeltas(shuffled(spans, seed))).toEqual(reference);
    expect(reference).toHaveLength(1);
    expect(traceStatus(reference[0]!)).toBe(3);
  });

  it("keeps int64 values beyond 2^53 exact and µs in times", () => {
    const span = normalizeSpan(
      create(SpanSchema, {
        ...execution()[0],
        startTime: { seconds: 1_790_000_000n, nanos: 123_456_789 },
        attributes: [{ key: "big", value: { value: { case: "intValue", value: 9_007_199_254_740_993n } } }, ...attributes({ small: 5 })],
      }),
      0,
    );
    expect(span.attributes["big"]).toBe("9007199254740993");
    expect(span.attributes["small"]).toBe(5);
    expect(span.startMicros).toBe(1_790_000_000_123_456);
    expect(isoMicros(span.startMicros)).toBe("2026-09-21T14:13:20.123456Z");
    expect(isoMicros(0)).toBe("1970-01-01T00:00:00.000000Z");
  });

  it("keeps attribute keys as data: __proto__ is an own key and nothing is inherited", () => {
    const span = normalizeSpan(create(SpanSchema, { ...execution()[0], attributes: attributes({ ["__proto__"]: "p", constructor: "c" }) }), 0);
    expect(Object.keys(span.attributes)).toEqual(["__proto__", "constructor"]);
    expect(Object.getOwnPropertyDescriptor(span.attributes, "__proto__")?.value).toBe("p");
    expect(span.attributes["constructor"]).toBe("c");
    for (const inherited of ["toString", "hasOwnProperty", "valueOf", "__defineGetter__"]) expect(span.attributes[inherited]).toBeUndefined();
  });

  it("reads skill versions as data, whatever their keys", () => {
    expect(JSON.parse(skillVersionsJson('{"__proto__":"1.0","constructor":"2.0","n":3}'))).toEqual(JSON.parse('{"__proto__":"1.0","constructor":"2.0"}'));
    expect(skillVersionsJson("not json")).toBe("{}");
    expect(skillVersionsJson("[1]")).toBe("{}");
  });

  it("maps risk levels given as names or numbers", () => {
    expect(riskLevelOf({ [ATTR.riskLevel]: "critical" })).toBe(4);
    expect(riskLevelOf({ [ATTR.riskLevel]: "RISK_LEVEL_LOW" })).toBe(1);
    expect(riskLevelOf({ [ATTR.riskLevel]: 2 })).toBe(2);
    expect(riskLevelOf({ [ATTR.riskLevel]: 9 })).toBeNull();
  });

  it("cuts long values without splitting a surrogate pair", () => {
    const text = "a".repeat(INGEST_LIMITS.valueChars - 1) + "😀" + "tail";
    const cut = truncateValue(text);
    expect(cut).toBe("a".repeat(INGEST_LIMITS.valueChars - 1) + TRUNCATION_MARKER);
    expect(truncateValue("short")).toBe("short");
  });

  it("samples by trace id deterministically and at about the rate", () => {
    const ids = Array.from({ length: 4000 }, (_, i) => i.toString(16).padStart(32, "0"));
    const kept = ids.filter((id) => inSample(id, 0.25)).length;
    expect(kept / ids.length).toBeGreaterThan(0.22);
    expect(kept / ids.length).toBeLessThan(0.28);
    expect(ids.filter((id) => inSample(id, 0.25))).toEqual(ids.filter((id) => inSample(id, 0.25)));
  });
});
