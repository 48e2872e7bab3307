import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SpanSchema } from "@clasper/proto";
import { attributeMap, isoMicros, type AttributeMap, type NormalizedEvent, type StoredValue } from "../src/ingest/normalize.js";
import { decodeSpanPayload, encodeSpanPayload } from "../src/store/span-payload.js";
import { seededRandom } from "./ingest-fixtures.js";

function generator(seed: number) {
  const next = seededRandom(seed);
  return { next, int: (n: number) => Math.floor(next() * n) };
}

const ALPHABET = ["a", "Z", "0", " ", '"', "\\", "{", "é", "ß", "中", "😀", "\n", "\uFFFD"];
// Lengths around the points where a length's varint grows (127/128, 16383/16384 bytes), in
// characters of one, two, three and four UTF-8 bytes.
const LENGTHS = [0, 1, 41, 42, 43, 126, 127, 128, 129, 700, 5000, 16383, 16384, 16385];

/** The first `length` UTF-16 units, without a half surrogate pair (decoded protobuf strings have none). */
const cut = (text: string, length: number) => text.slice(0, length).replace(/[\uD800-\uDBFF]$/, "x");

function randomString(rand: ReturnType<typeof generator>, maxLength = Infinity): string {
  const length = Math.min(maxLength, LENGTHS[rand.int(LENGTHS.length)]!);
  const pick = rand.next() < 0.5 ? ["a", "b", " "] : ALPHABET;
  let out = "";
  while (out.length < length) out += pick[rand.int(pick.length)];
  return cut(out, length);
}

function randomValue(rand: ReturnType<typeof generator>, depth = 0): StoredValue {
  switch (rand.int(depth > 1 ? 7 : 8)) {
    case 0:
    case 1:
    case 2:
      return randomString(rand);
    case 3:
      return rand.next() < 0.5;
    case 4:
      return [0, -1, 1, 127, 128, -128, 2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER][rand.int(10)]!;
    case 5:
      return [0.25, -3.5e-7, 1e300, -1e21, Number.MIN_VALUE][rand.int(5)]!;
    case 6:
      return null;
    default:
      return Array.from({ length: rand.int(4) }, () => randomValue(rand, depth + 1));
  }
}

function randomAttributes(rand: ReturnType<typeof generator>): AttributeMap {
  const map = Object.create(null) as AttributeMap;
  const keys = ["gen_ai.input.messages", "__proto__", "constructor", "", "é.key", "k"];
  for (let i = rand.int(12); i > 0; i--) map[rand.next() < 0.3 ? keys[rand.int(keys.length)]! : randomString(rand, 60)] = randomValue(rand);
  return map;
}

const plain = (map: AttributeMap) => JSON.parse(JSON.stringify(map)) as unknown;

describe("span payload encoding (unit)", () => {
  it("reads back every attribute map and event it writes, across many spans", () => {
    const rand = generator(7);
    // Enough spans that messages cross from one chunk of the writer to the next.
    const spans = Array.from({ length: 600 }, () => ({
      attributes: randomAttributes(rand),
      events: Array.from({ length: rand.int(3) }, (): NormalizedEvent => ({
        name: randomString(rand, 50),
        timeMicros: [0, -1, 1_790_000_000_123_456, -62_135_596_800_000_000, 253_402_300_799_999_999][rand.int(5)]!,
        attributes: randomAttributes(rand),
      })),
    }));
    const encoded = spans.map(encodeSpanPayload);
    spans.forEach((span, i) => {
      const decoded = decodeSpanPayload(encoded[i]!);
      expect(plain(decoded.attributes), `span ${i}`).toEqual(plain(span.attributes));
      expect(
        decoded.events.map((e) => ({ ...e, attributes: plain(e.attributes) })),
        `span ${i}`,
      ).toEqual(span.events.map((e) => ({ name: e.name, time: isoMicros(e.timeMicros), attributes: plain(e.attributes) })));
    });
  });

  it("writes what protobuf-es writes for the same Span", () => {
    const attributes = Object.create(null) as AttributeMap;
    Object.assign(attributes, { s: "text é", b: true, i: -5, d: 0.5, a: ["x", 2], n: null });
    const expected = create(SpanSchema, {
      attributes: [
        { key: "s", value: { value: { case: "stringValue", value: "text é" } } },
        { key: "b", value: { value: { case: "boolValue", value: true } } },
        { key: "i", value: { value: { case: "intValue", value: -5n } } },
        { key: "d", value: { value: { case: "doubleValue", value: 0.5 } } },
        {
          key: "a",
          value: {
            value: {
              case: "arrayValue",
              value: { values: [{ value: { case: "stringValue", value: "x" } }, { value: { case: "intValue", value: 2n } }] },
            },
          },
        },
        { key: "n", value: {} },
      ],
      events: [{ name: "e", time: { seconds: 1n, nanos: 2000 }, attributes: [] }],
    });
    const written = encodeSpanPayload({ attributes, events: [{ name: "e", timeMicros: 1_000_002, attributes: Object.create(null) as AttributeMap }] });
    expect(Buffer.from(written).equals(Buffer.from(toBinary(SpanSchema, expected)))).toBe(true);
    expect(plain(attributeMap(expected.attributes))).toEqual(plain(decodeSpanPayload(written).attributes));
  });
});
