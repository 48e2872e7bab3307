import { describe, expect, it } from "vitest";
import { create, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { GetTraceResponseSchema, ListTracesByEntityResponseSchema, ListTracesByLabelResponseSchema, ListTracesResponseSchema, TraceSummarySchema } from "@clasper/proto";
import { SERVICE_DESCRIPTORS, SERVICE_NAMES } from "@clasper/service-kit";
import { compiledRestJson, hasCompiledWriter, renderRestJson, restJsonByReflection } from "../src/rest-json.js";
import { restRoutes } from "../src/route-table.js";

/** Every type the gateway answers a unary REST call with. */
const RESPONSE_TYPES = [
  ...new Set(
    restRoutes(SERVICE_NAMES.map((name) => SERVICE_DESCRIPTORS[name]))
      .filter((route) => route.method.methodKind === "unary")
      .map((route) => route.method.output),
  ),
];

/** The text, or the error, of rendering: compiled and by reflection must agree on both. */
function outcome(render: () => string): { text: string } | { error: string } {
  try {
    return { text: render() };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

function expectSameRendering(desc: DescMessage, message: Message): void {
  const reference = outcome(() => JSON.stringify(restJsonByReflection(desc, message)));
  expect(outcome(() => renderRestJson(desc, message))).toEqual(reference);
  // And without falling back: the compiled writer itself writes what reflection writes, and
  // leaves to reflection only what reflection refuses too.
  const compiled = outcome(() => compiledRestJson(desc, message));
  expect("text" in compiled ? compiled : { failed: true }).toEqual("text" in reference ? reference : { failed: true });
}

/**
 * Random messages on the edges of JSON: strings that need escapes (quotes, controls, lone
 * surrogates) or not, non-finite and negative-zero doubles, 64-bit extremes, unknown enum
 * numbers, map keys JSON orders first ("10", "2") or drops ("__proto__"), timestamps with 0, 3,
 * 6 and 9 fraction digits and out of range, JSON values of every kind (including the NaN
 * protobuf refuses), unset and set message fields and oneof members.
 */
function generator(seed: number) {
  const generator = xoroshiro128plus(seed);
  const random = () => uniformFloat64(generator);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const chance = (p: number) => random() < p;

  const STRINGS = ["", "a", "trace-0123", 'say "hi"', "back\\slash", "line\nbreak\t\u0001", "\uD800", "\uDC00x", "\u{1F600}", "é\u2028", "__proto__"];
  const string = () => (chance(0.5) ? pick(STRINGS) : pick(STRINGS) + pick(STRINGS));
  const mapKey = (type: ScalarType) =>
    type === ScalarType.STRING ? pick([...STRINGS, "10", "2", "__proto__"]) : type === ScalarType.BOOL ? pick(["true", "false"]) : String(pick([0, 2, 10, -1]));

  function scalar(type: ScalarType): unknown {
    switch (type) {
      case ScalarType.STRING:
        return string();
      case ScalarType.BOOL:
        return chance(0.5);
      case ScalarType.BYTES:
        return Uint8Array.from({ length: pick([0, 1, 2, 3, 5]) }, () => Math.floor(random() * 256));
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return pick([0, -0, 1.5, -2, 1e21, 5e-324, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.SFIXED64:
        return pick([0n, -1n, 9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n]);
      case ScalarType.UINT64:
      case ScalarType.FIXED64:
        return pick([0n, 1n, 2n ** 64n - 1n]);
      case ScalarType.UINT32:
      case ScalarType.FIXED32:
        return pick([0, 1, 2 ** 32 - 1]);
      default:
        return pick([0, -1, 7, 2 ** 31 - 1, -(2 ** 31)]);
    }
  }

  function jsonValue(depth: number): unknown {
    const kind = depth > 2 ? pick(["null", "number", "string", "bool"]) : pick(["null", "number", "string", "bool", "struct", "list"]);
    switch (kind) {
      case "null":
        return { kind: { case: "nullValue", value: 0 } };
      case "number":
        return { kind: { case: "numberValue", value: chance(0.05) ? Number.NaN : pick([0, -0, 1.25, 1e21]) } };
      case "string":
        return { kind: { case: "stringValue", value: string() } };
      case "bool":
        return { kind: { case: "boolValue", value: chance(0.5) } };
      case "struct": {
        const fields: Record<string, unknown> = {};
        for (let i = 0; i < pick([0, 1, 2]); i++) fields[mapKey(ScalarType.STRING)] = jsonValue(depth + 1);
        return { kind: { case: "structValue", value: { fields } } };
      }
      default:
        return { kind: { case: "listValue", value: { values: Array.from({ length: pick([0, 1, 2]) }, () => jsonValue(depth + 1)) } } };
    }
  }

  function timestamp(): unknown {
    const seconds = chance(0.05) ? pick([-62135596801n, 253402300800n, -62135596800n, 253402300799n]) : BigInt(pick([0, 1_700_000_000, 1_800_000_123, -86_399]));
    return { seconds, nanos: chance(0.05) ? pick([-1, 1_000_000_000]) : pick([0, 1, 120_000_000, 123_456_000, 123_456_789]) };
  }

  function messageValue(desc: DescMessage, depth: number): unknown {
    switch (desc.typeName) {
      case "google.protobuf.Timestamp":
        return create(desc, timestamp() as never);
      case "google.protobuf.Value":
        return create(desc, jsonValue(depth) as never);
      case "google.protobuf.Struct": {
        // Held as a plain JSON object in a message field.
        const json: Record<string, unknown> = {};
        for (let i = 0; i < pick([0, 1, 2]); i++) json[mapKey(ScalarType.STRING)] = pick([null, 1.5, "x", true, [1, "y"], { nested: false }]);
        return json;
      }
      default:
        return message(desc, depth + 1);
    }
  }

  function item(field: DescField, kind: "scalar" | "enum" | "message", depth: number): unknown {
    if (kind === "message") return messageValue(field.message!, depth);
    if (kind === "enum") return chance(0.1) ? 99 : pick(field.enum!.values).number;
    return scalar(field.scalar!);
  }

  function value(field: DescField, depth: number): unknown {
    switch (field.fieldKind) {
      case "list":
        return Array.from({ length: depth > 2 ? 0 : pick([0, 1, 2, 3]) }, () => item(field, field.listKind, depth));
      case "map": {
        const map: Record<string, unknown> = {};
        // Defined, not assigned: "__proto__" must become an entry, as protobuf's parsers make it.
        for (let i = 0; i < (depth > 2 ? 0 : pick([0, 1, 2, 3])); i++) {
          Object.defineProperty(map, mapKey(field.mapKey), { value: item(field, field.mapKind, depth), enumerable: true, writable: true, configurable: true });
        }
        return map;
      }
      default:
        return item(field, field.fieldKind, depth);
    }
  }

  function message(desc: DescMessage, depth = 0): Message {
    const m = create(desc) as Message & Record<string, unknown>;
    for (const field of desc.fields) {
      if (field.oneof || chance(0.2) || (depth > 3 && field.message)) continue;
      m[field.localName] = value(field, depth);
    }
    for (const oneof of desc.oneofs) {
      if (chance(0.3) || depth > 3) continue;
      const member = pick(oneof.fields);
      m[oneof.localName] = { case: member.localName, value: value(member, depth) };
    }
    return m;
  }

  return { message };
}

describe("compiled REST JSON rendering", () => {
  it("renders every response type exactly as reflection does, errors included", () => {
    for (const [i, desc] of RESPONSE_TYPES.entries()) {
      const { message } = generator(1_000 + i);
      for (let n = 0; n < 150; n++) expectSameRendering(desc, message(desc));
    }
  });

  it("compiles the listings and the trace, so the hot answers do not fall back to reflection", () => {
    for (const desc of [ListTracesResponseSchema, ListTracesByLabelResponseSchema, ListTracesByEntityResponseSchema, GetTraceResponseSchema]) {
      expect(hasCompiledWriter(desc)).toBe(true);
    }
    // A type whose fields protobuf holds as plain values (a Struct field) is rendered by reflection.
    expect(RESPONSE_TYPES.every((desc) => hasCompiledWriter(desc) || desc.fields.some((f) => f.message?.typeName === "google.protobuf.Struct"))).toBe(true);
  });

  it("renders a listing as the documented REST JSON", () => {
    const summary = create(TraceSummarySchema, {
      traceId: "ab".repeat(16),
      status: 2,
      startedAt: timestampFromDate(new Date("2026-01-02T03:04:05.678Z")),
      costMicros: 12n,
      labels: { env: "prod" },
    });
    const text = renderRestJson(ListTracesResponseSchema, create(ListTracesResponseSchema, { traces: [summary], total: 1, limit: 50 }));
    const json = JSON.parse(text) as { traces: Record<string, unknown>[]; total: number; has_more: boolean };
    expect(json).toMatchObject({ total: 1, has_more: false, limit: 50, offset: 0, next_cursor: "" });
    expect(json.traces[0]).toMatchObject({
      trace_id: "ab".repeat(16),
      status: "success",
      risk_level: null,
      started_at: "2026-01-02T03:04:05.678Z",
      cost_micros: "12",
      labels: { env: "prod" },
    });
  });

  it("falls back to reflection for a value of the wrong type, which then refuses it", () => {
    const bad = create(TraceSummarySchema, { traceId: "x" }) as unknown as Record<string, unknown>;
    bad["toolCallCount"] = "three";
    expect(() => compiledRestJson(TraceSummarySchema, bad as unknown as Message)).toThrow();
    expect(() => renderRestJson(TraceSummarySchema, bad as unknown as Message)).toThrow(/tool_call_count/);
  });
});
