import { fromBinary } from "@bufbuild/protobuf";
import { SpanSchema } from "@clasper/proto";
import { attributeMap, isoMicros, timestampMicros, type AttributeMap, type NormalizedSpan, type StoredValue } from "../ingest/normalize.js";
import type { SpanEventRow } from "./schema.js";

/*
 * A span's attributes and events as stored in `spans.payload` (migration
 * 20261127000000_span_payload): the protobuf encoding of a `clasper.trace.v1.Span` that carries
 * only `attributes` (field 9) and `events` (field 10), after normalisation and redaction. The
 * contract's own message, so any protobuf tool with the schema decodes it (`buf convert`), and its
 * field numbers are kept stable by `buf breaking`.
 *
 * Why not JSON text: the payload attributes are mostly JSON strings themselves (messages, tool
 * arguments), and escaping every quote of them again cost more service CPU than the rest of the
 * span's encoding; here a string is copied as UTF-8 behind its length. Why not jsonb: PostgreSQL
 * then parsed every attribute value on insert, about a third of its CPU on ingest. Nothing reads
 * the payload in SQL; the query side decodes it in Node.
 */

// Wire types and the field numbers of span.proto.
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const SPAN_ATTRIBUTES = 9;
const SPAN_EVENTS = 10;
const ATTRIBUTE_KEY = 1;
const ATTRIBUTE_VALUE = 2;
const VALUE_STRING = 1;
const VALUE_BOOL = 2;
const VALUE_INT = 3;
const VALUE_DOUBLE = 4;
const VALUE_ARRAY = 5;
const ARRAY_VALUES = 1;
const EVENT_NAME = 1;
const EVENT_TIME = 2;
const EVENT_ATTRIBUTES = 3;
const TIMESTAMP_SECONDS = 1;
const TIMESTAMP_NANOS = 2;

/** Below this many UTF-16 units a string's length fits one varint byte even as UTF-8 (3 × 42 < 128). */
const SHORT_STRING = 42;
const CHUNK_BYTES = 256 * 1024;

const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/**
 * Protobuf wire format, one message after another into shared chunks: a finished message is a
 * view of its chunk (no copy, no allocation per message), and a message that outgrows the chunk
 * moves to a new one. A length-delimited field reserves room for its length from an estimate, and
 * its content moves only when the length needs more or fewer bytes.
 */
class ProtoWriter {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  /** Where the message being written starts in `buf`. */
  private base = 0;
  private at = 0;

  /** The message written since the last call, as a view that later messages never overwrite. */
  finish(): Buffer {
    const message = this.buf.subarray(this.base, this.at);
    this.base = this.at;
    return message;
  }

  private ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, 2 * (this.at - this.base + n)));
    this.buf.copy(next, 0, this.base, this.at);
    this.at -= this.base;
    this.base = 0;
    this.buf = next;
  }

  /** Non-negative integers below 2^53. */
  varint(value: number): void {
    this.ensure(8);
    this.at = this.putVarint(this.at, value);
  }

  private putVarint(at: number, value: number): number {
    let v = value;
    while (v >= 0x80) {
      this.buf[at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[at++] = v;
    return at;
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** int64 as protobuf writes it: a negative value is its 64-bit two's complement. */
  int64(field: number, value: number): void {
    this.tag(field, VARINT);
    if (value >= 0) return this.varint(value);
    this.ensure(10);
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.at++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.at++] = Number(v);
  }

  double(field: number, value: number): void {
    this.tag(field, FIXED64);
    this.ensure(8);
    this.at = this.buf.writeDoubleLE(value, this.at);
  }

  string(field: number, value: string): void {
    this.tag(field, LENGTH_DELIMITED);
    const n = value.length;
    // UTF-8 takes at least one byte per UTF-16 unit and at most three.
    this.ensure(5 + n * 3);
    if (n < SHORT_STRING) {
      // Keys, ids and names: copying ASCII by hand beats Buffer#write's call overhead.
      const buf = this.buf;
      let at = this.at + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at++] = c;
      }
      if (i === n) {
        buf[this.at] = n;
        this.at = at;
        return;
      }
    }
    const start = this.begin(n);
    this.at += this.buf.write(value, this.at, "utf8");
    this.end(start);
  }

  /** Opens a length-delimited field's content, guessing its length; `end` closes it. */
  open(field: number, estimate: number): number {
    this.tag(field, LENGTH_DELIMITED);
    return this.begin(estimate);
  }

  private begin(estimate: number): number {
    const reserved = varintSize(estimate);
    this.ensure(reserved);
    this.at += reserved;
    // The content's offset in the message (which survives a move to a new chunk), with the bytes
    // reserved for its length in the low bits: offset * 8 + reserved.
    return (this.at - this.base) * 8 + reserved;
  }

  end(opened: number): void {
    const offset = Math.floor(opened / 8);
    const reserved = opened % 8;
    const length = this.at - this.base - offset;
    const needed = varintSize(length);
    if (needed > reserved) this.ensure(needed - reserved);
    const start = this.base + offset;
    if (needed !== reserved) {
      this.buf.copyWithin(start - reserved + needed, start, this.at);
      this.at += needed - reserved;
    }
    this.putVarint(start - reserved, length);
  }
}

/** A rough content length of an AttributeValue, for the length reservation. */
function estimate(value: StoredValue): number {
  return typeof value === "string" ? value.length + 3 : 11;
}

function writeValue(w: ProtoWriter, value: StoredValue): void {
  if (typeof value === "string") w.string(VALUE_STRING, value);
  else if (typeof value === "boolean") (w.tag(VALUE_BOOL, VARINT), w.varint(value ? 1 : 0));
  else if (typeof value === "number") Number.isSafeInteger(value) ? w.int64(VALUE_INT, value) : w.double(VALUE_DOUBLE, value);
  else if (Array.isArray(value)) {
    const array = w.open(VALUE_ARRAY, value.length * 16);
    for (const item of value) {
      const element = w.open(ARRAY_VALUES, estimate(item));
      writeValue(w, item);
      w.end(element);
    }
    w.end(array);
  }
  // null: an AttributeValue with no value, read back as null.
}

function writeAttributes(w: ProtoWriter, field: number, attributes: AttributeMap): void {
  for (const key in attributes) {
    const value = attributes[key] as StoredValue;
    const attribute = w.open(field, key.length + estimate(value) + 4);
    w.string(ATTRIBUTE_KEY, key);
    const encoded = w.open(ATTRIBUTE_VALUE, estimate(value));
    writeValue(w, value);
    w.end(encoded);
    w.end(attribute);
  }
}

function writeTimestamp(w: ProtoWriter, field: number, micros: number): void {
  const seconds = Math.floor(micros / 1_000_000);
  const timestamp = w.open(field, 12);
  w.int64(TIMESTAMP_SECONDS, seconds);
  w.tag(TIMESTAMP_NANOS, VARINT);
  w.varint((micros - seconds * 1_000_000) * 1000);
  w.end(timestamp);
}

const writer = new ProtoWriter();

/** The stored payload of a normalised, redacted span. */
export function encodeSpanPayload(span: Pick<NormalizedSpan, "attributes" | "events">): Buffer {
  writeAttributes(writer, SPAN_ATTRIBUTES, span.attributes);
  for (const event of span.events) {
    const encoded = writer.open(SPAN_EVENTS, 256);
    writer.string(EVENT_NAME, event.name);
    writeTimestamp(writer, EVENT_TIME, event.timeMicros);
    writeAttributes(writer, EVENT_ATTRIBUTES, event.attributes);
    writer.end(encoded);
  }
  return writer.finish();
}

/** A stored payload read back: the attribute map and events ingest wrote. */
export function decodeSpanPayload(bytes: Uint8Array): { attributes: AttributeMap; events: SpanEventRow[] } {
  const span = fromBinary(SpanSchema, bytes);
  return {
    attributes: attributeMap(span.attributes),
    events: span.events.map((event) => ({
      name: event.name,
      time: isoMicros(event.time ? timestampMicros(event.time) : 0),
      attributes: attributeMap(event.attributes),
    })),
  };
}
