import { describe, expect, it } from "vitest";
import { create, getOption, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { field as fieldRulesOption, message as messageRulesOption } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import * as proto from "@clasper/proto";
import { IngestSpansRequestSchema, SpanKind, SpanStatusCode } from "@clasper/proto";
import { acceptanceCheck, createFastValidator } from "../src/validation.js";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** Every message type of our contracts. */
const SCHEMAS: DescMessage[] = Object.values(proto).filter(
  (value): value is DescMessage => typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "message",
);

/** A seeded PRNG, so a failure names a seed that reproduces it. */
function prng(seed: number): () => number {
  const generator = xoroshiro128plus(seed);
  return () => uniformFloat64(generator);
}

/**
 * Random messages that sit on the edges of the rules: strings of the bounding lengths (counted in
 * UTF-16 units and in code points, with surrogate pairs and lone surrogates), hex and not-quite-hex
 * ids for the patterns, undefined enum numbers, lists around their item limits, unset required
 * fields, nested messages and oneof members.
 */
function generator(seed: number) {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const chance = (p: number) => random() < p;

  function text(length: number): string {
    const alphabets = ["0123456789abcdef", "0123456789abcdefABCDEF-_ .", "\u{1F600}", "\uD800", "é"];
    let out = "";
    const alphabet = chance(0.6) ? alphabets[0]! : pick(alphabets);
    while (out.length < length) out += pick([...alphabet]);
    return out.slice(0, Math.max(length, 0));
  }

  function stringValue(field: DescField | undefined): string {
    const rules = field ? getOption(field, fieldRulesOption) : undefined;
    const r = rules?.type.case === "string" ? rules.type.value : undefined;
    const bounds = [0, 1, 2, 15, 16, 17, 31, 32, 33];
    if (r?.minLen !== undefined) bounds.push(Number(r.minLen) - 1, Number(r.minLen), Number(r.minLen) + 1);
    // Long limits (prompts, up to 100,000 characters) are reached now and then, not every time.
    if (r?.maxLen !== undefined && (r.maxLen <= 1024n || chance(0.1))) {
      bounds.push(Number(r.maxLen) - 1, Number(r.maxLen), Number(r.maxLen) + 1, 2 * Number(r.maxLen));
    }
    return text(pick(bounds));
  }

  function scalar(type: ScalarType, field: DescField | undefined): unknown {
    switch (type) {
      case ScalarType.STRING:
        return stringValue(field);
      case ScalarType.BOOL:
        return chance(0.5);
      case ScalarType.BYTES:
        return new Uint8Array(pick([0, 1, 4, 32]));
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return pick([0, -1, 0.5, 1, 100, 1e9, Number.NaN]);
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.SFIXED64:
        return BigInt(pick([0, -1, 1, 7, 1000, 1_000_000]));
      case ScalarType.UINT64:
      case ScalarType.FIXED64:
        return BigInt(pick([0, 1, 7, 1000, 1_000_000]));
      case ScalarType.UINT32:
      case ScalarType.FIXED32:
        return pick([0, 1, 7, 100, 1000, 100000]);
      default:
        return pick([0, -1, 1, 7, 100, 1000, 100000]);
    }
  }

  function enumValue(field: DescField & { fieldKind: "enum" } | { enum: { values: readonly { number: number }[] } }): number {
    return chance(0.15) ? 99 : pick(field.enum.values).number;
  }

  function listLength(field: DescField): number {
    const rules = getOption(field, fieldRulesOption);
    const r = rules.type.case === "repeated" ? rules.type.value : undefined;
    const lengths = [0, 0, 1, 1, 2, 3];
    if (r?.minItems !== undefined) lengths.push(Number(r.minItems) - 1, Number(r.minItems));
    // Lists at their maximum are built rarely (a thousand spans each).
    if (r?.maxItems !== undefined && chance(0.05)) lengths.push(Number(r.maxItems), Number(r.maxItems) + 1);
    return Math.max(0, pick(lengths));
  }

  function value(field: DescField, depth: number): unknown {
    switch (field.fieldKind) {
      case "scalar":
        return scalar(field.scalar, field);
      case "enum":
        return enumValue(field);
      case "message":
        return message(field.message, depth + 1);
      case "list": {
        const n = depth > 3 ? 0 : listLength(field);
        // Long lists (item limits) get shallow elements: the count is what they test.
        const itemDepth = n > 3 ? 10 : depth + 1;
        return Array.from({ length: n }, () =>
          field.listKind === "message" ? message(field.message, itemDepth) : field.listKind === "enum" ? enumValue(field) : scalar(field.scalar, field),
        );
      }
      case "map": {
        const entries: Record<string, unknown> = {};
        for (let i = 0; i < pick([0, 1, 2]); i++) {
          const key = field.mapKey === ScalarType.STRING ? text(pick([0, 1, 5])) : String(i);
          entries[key] = field.mapKind === "message" ? message(field.message, depth + 1) : field.mapKind === "enum" ? enumValue(field) : scalar(field.scalar, undefined);
        }
        return entries;
      }
    }
  }

  function message(schema: DescMessage, depth = 0): Message {
    const init: Record<string, unknown> = {};
    for (const field of schema.fields) {
      if (field.oneof || chance(0.25) || (depth > 3 && field.fieldKind === "message")) continue;
      init[field.localName] = value(field, depth);
    }
    for (const oneof of schema.oneofs) {
      if (chance(0.3) || depth > 3) continue;
      const member = pick(oneof.fields);
      init[oneof.localName] = { case: member.localName, value: value(member, depth) };
    }
    return create(schema, init);
  }

  return { message };
}

type Outcome = { kind: string; violations?: { field: string; rule: string | undefined; message: string }[] };

function outcome(validator: Validator, schema: DescMessage, message: Message): Outcome {
  const result = validator.validate(schema, message);
  if (result.kind !== "invalid") return { kind: result.kind };
  return {
    kind: result.kind,
    violations: result.violations.map((v) => ({ field: pathToString(v.field), rule: v.ruleId, message: v.message })),
  };
}

describe("createFastValidator", () => {
  it("answers every message of every contract type exactly as protovalidate does", () => {
    const reference = createValidator();
    const fast = createFastValidator();
    let invalid = 0;
    for (const [i, schema] of SCHEMAS.entries()) {
      const { message } = generator(1000 + i);
      const accept = acceptanceCheck(schema);
      // At least 20 messages per type, more while the type is cheap to validate.
      const until = Date.now() + 40;
      for (let n = 0; n < 80 && (n < 20 || Date.now() < until); n++) {
        const msg = message(schema);
        const expected = outcome(reference, schema, msg);
        if (expected.kind === "invalid") invalid++;
        expect({ type: schema.typeName, seed: 1000 + i, n, ...outcome(fast, schema, msg) }).toEqual({ type: schema.typeName, seed: 1000 + i, n, ...expected });
        // A compiled check takes the fast path for every valid message, not only for some.
        if (accept) expect({ type: schema.typeName, seed: 1000 + i, n, accepted: accept(msg) }).toEqual({ type: schema.typeName, seed: 1000 + i, n, accepted: expected.kind === "valid" });
      }
    }
    // The generator must reach the rules, or the comparison above proves little.
    expect(invalid).toBeGreaterThan(SCHEMAS.length * 5);
  });

  it("compiles numeric ranges and the contracts' cross-field CEL rules (ListTracesRequest among them)", () => {
    const withCel = SCHEMAS.filter((schema) => getOption(schema, messageRulesOption).cel.length > 0);
    expect(withCel.map((schema) => schema.typeName)).toContain(proto.ListTracesRequestSchema.typeName);
    for (const schema of withCel) expect({ type: schema.typeName, compiled: acceptanceCheck(schema) !== undefined }).toEqual({ type: schema.typeName, compiled: true });
    const reference = createValidator();
    const fast = createFastValidator();
    const accept = acceptanceCheck(proto.ListTracesRequestSchema)!;
    const cases: Record<string, unknown>[] = [
      {},
      { limit: 200, offset: 0 },
      { limit: 201 },
      { limit: -1 },
      { offset: -1 },
      { labelKey: "env", labelValue: "prod" },
      { labelValue: "prod" },
      { minCostMicros: 5n },
      { maxCostMicros: 5n },
      { minCostMicros: 5n, maxCostMicros: 5n },
      { minCostMicros: 6n, maxCostMicros: 5n },
      { minCostMicros: 0n, maxCostMicros: 0n },
      { minCostMicros: -1n },
      { status: 99 },
      { workspaceId: "w".repeat(129) },
    ];
    for (const init of cases) {
      const msg = create(proto.ListTracesRequestSchema, init);
      const expected = outcome(reference, proto.ListTracesRequestSchema, msg);
      expect({ init, accepted: accept(msg) }).toEqual({ init, accepted: expected.kind === "valid" });
      expect({ init, ...outcome(fast, proto.ListTracesRequestSchema, msg) }).toEqual({ init, ...expected });
    }
  });

  it("names the field of a span that breaks a rule, as protovalidate does", () => {
    const span = (over: Record<string, unknown>) => ({
      traceId: "a".repeat(32),
      spanId: "b".repeat(16),
      name: "chat",
      kind: SpanKind.INTERNAL,
      startTime: { seconds: 1n },
      endTime: { seconds: 2n },
      status: { code: SpanStatusCode.OK },
      attributes: [{ key: "k", value: { value: { case: "stringValue" as const, value: "v" } } }],
      ...over,
    });
    const fast = createFastValidator();
    const cases: [Record<string, unknown>, string][] = [
      [{}, "valid"],
      [{ traceId: "A".repeat(32) }, "spans[1].trace_id"],
      [{ parentSpanId: "c".repeat(15) }, "spans[1].parent_span_id"],
      [{ parentSpanId: "" }, "valid"],
      [{ name: "\u{1F600}".repeat(512) }, "valid"],
      [{ name: "\u{1F600}".repeat(513) }, "spans[1].name"],
      [{ kind: 42 }, "spans[1].kind"],
      [{ endTime: undefined }, "spans[1].end_time"],
      [{ attributes: [{ key: "", value: {} }] }, "spans[1].attributes[0].key"],
      [{ attributes: [{ key: "k", value: { value: { case: "arrayValue", value: { values: Array.from({ length: 1001 }, () => ({})) } } } }] }, "spans[1].attributes[0].value.array_value.values"],
    ];
    for (const [over, expected] of cases) {
      const req = create(IngestSpansRequestSchema, { spans: [span({}), span(over)] });
      const result = fast.validate(IngestSpansRequestSchema, req);
      expect(result.kind === "valid" ? "valid" : pathToString(result.violations![0]!.field)).toBe(expected);
    }
  });

  it("passes JSON-valued fields (Struct, Value, ListValue) through exactly as protovalidate does", () => {
    // protobuf-es holds these as plain JSON in a message field, not as messages.
    const snapshot = { tool: "create_task", args: { title: "x", tags: ["a", 1, null, { deep: true }] } };
    const cases: [DescMessage, Record<string, unknown>][] = [
      [proto.AuthorizeToolCallRequestSchema, { requestSnapshot: snapshot }],
      [proto.AuthorizeToolCallRequestSchema, { requestSnapshot: {} }],
      ...SCHEMAS.flatMap((schema) =>
        schema.fields
          .filter((f) => f.fieldKind === "message" && ["google.protobuf.Struct", "google.protobuf.Value"].includes(f.message.typeName))
          .map((f): [DescMessage, Record<string, unknown>] => [schema, { [f.localName]: f.message.typeName === "google.protobuf.Struct" ? snapshot : snapshot.args.tags }]),
      ),
    ];
    expect(cases.length).toBeGreaterThan(5);
    const reference = createValidator();
    const fast = createFastValidator();
    for (const [schema, init] of cases) {
      const msg = create(schema, init);
      expect({ type: schema.typeName, ...outcome(fast, schema, msg) }).toEqual({ type: schema.typeName, ...outcome(reference, schema, msg) });
    }
  });
});
