import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";

/**
 * Reading stored span attributes. Attribute values arrive from exporters as strings, numbers,
 * booleans or arrays, and structured GenAI content (messages, tool arguments) is usually a JSON
 * string (OpenTelemetry allows both), so every reader here accepts either form and never throws:
 * a malformed attribute reads as absent rather than failing the whole trace.
 */
export type Attributes = Readonly<Record<string, unknown>>;

export function attrString(attrs: Attributes, key: string): string | undefined {
  const value = attrs[key];
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
  return undefined;
}

export function attrNumber(attrs: Attributes, key: string): number | undefined {
  const value = attrs[key];
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

/** Integer attribute as bigint (token counts, micro-dollars); fractions are truncated. */
export function attrInt(attrs: Attributes, key: string): bigint {
  const value = attrNumber(attrs, key);
  return value === undefined ? 0n : BigInt(Math.trunc(value));
}

export function attrBool(attrs: Attributes, key: string): boolean | undefined {
  const value = attrs[key];
  if (typeof value === "boolean") return value;
  if (value === "true") return true;
  if (value === "false") return false;
  return undefined;
}

/** A string list given as an array or as a JSON array string ("["a","b"]") or a lone string. */
export function attrStrings(attrs: Attributes, key: string): string[] {
  const value = parseMaybeJson(attrs[key]);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  if (typeof value === "string" && value !== "") return [value];
  return [];
}

/** A structured attribute: parsed when it is a JSON string, as-is otherwise. */
export function attrJson(attrs: Attributes, key: string): unknown {
  return parseMaybeJson(attrs[key]);
}

function parseMaybeJson(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const trimmed = value.trim();
  if (!trimmed.startsWith("{") && !trimmed.startsWith("[")) return value;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return value;
  }
}

/** A protobuf Value for a tool argument/result attribute; undefined when absent. */
export function attrValue(attrs: Attributes, key: string): Value | undefined {
  return toValue(attrJson(attrs, key));
}

/** One message of gen_ai.input.messages / gen_ai.output.messages, reduced to what we read. */
export interface GenAiMessage {
  role: string;
  text: string;
  toolCalls: { id: string; name: string; arguments: unknown }[];
  finishReason: string;
}

/**
 * Messages in the OpenTelemetry GenAI shape (`[{role, parts: [{type: "text", content}, {type:
 * "tool_call", id, name, arguments}], finish_reason}]`), also accepting the common
 * `{role, content}` form.
 */
export function attrMessages(attrs: Attributes, key: string): GenAiMessage[] | undefined {
  const value = attrJson(attrs, key);
  if (!Array.isArray(value)) return undefined;
  return value.filter(isObject).map((message) => {
    const texts: string[] = [];
    const toolCalls: GenAiMessage["toolCalls"] = [];
    if (typeof message["content"] === "string") texts.push(message["content"]);
    for (const part of Array.isArray(message["parts"]) ? message["parts"].filter(isObject) : []) {
      if (part["type"] === "text" && typeof part["content"] === "string") texts.push(part["content"]);
      if (part["type"] === "tool_call") {
        toolCalls.push({ id: stringOf(part["id"]), name: stringOf(part["name"]), arguments: parseMaybeJson(part["arguments"]) });
      }
    }
    return { role: stringOf(message["role"]), text: texts.join(""), toolCalls, finishReason: stringOf(message["finish_reason"]) };
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOf(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** A JSON value (parsed attribute) as a protobuf Value, for recorded tool-call arguments. */
export function toValue(value: unknown): Value | undefined {
  if (value === undefined || value === null) return undefined;
  return fromJson(ValueSchema, value as JsonValue);
}
