import { fromJson, ScalarType, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { FieldError, restToProtoJson } from "./json-shape.js";
import type { RestRoute } from "./route-table.js";

type JsonObject = { [key: string]: JsonValue };

/** A string from a URL (path segment or query parameter) as the JSON value its field expects. */
function fromUrlString(field: DescField, raw: string, path: string): JsonValue {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind === "map" ? "map" : field.fieldKind;
  if (kind === "map" || (kind === "message" && !field.message!.typeName.startsWith("google.protobuf."))) {
    throw new FieldError(path, "cannot be set from the URL");
  }
  if (kind === "scalar" && field.scalar === ScalarType.BOOL) {
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new FieldError(path, "must be true or false");
  }
  // Numbers stay strings: the JSON shape check accepts numeric strings and names the field when not.
  return raw;
}

function assignPath(target: JsonObject, schema: DescMessage, dotted: string, raw: string): void {
  const parts = dotted.split(".");
  let desc = schema;
  let node = target;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const field = desc.fields.find((f) => f.name === part || f.jsonName === part);
    const path = parts.slice(0, i + 1).join(".");
    if (!field) throw new FieldError(path, "unknown parameter");
    if (i < parts.length - 1) {
      if (field.fieldKind !== "message") throw new FieldError(path, "has no sub-fields");
      const child = (node[field.name] ??= {});
      if (typeof child !== "object" || child === null || Array.isArray(child)) throw new FieldError(path, "conflicting values");
      node = child as JsonObject;
      desc = field.message;
      continue;
    }
    const value = fromUrlString(field, raw, path);
    if (field.fieldKind === "list") {
      const list = (node[field.name] ??= []);
      if (!Array.isArray(list)) throw new FieldError(path, "conflicting values");
      list.push(value);
    } else {
      if (field.name in node) throw new FieldError(path, "given more than once");
      node[field.name] = value;
    }
  }
}

/**
 * Builds the RPC request from a REST call: the JSON body (per the rule's `body`), path
 * parameters, and, for routes without a body, the query string. Unknown or mistyped input fails
 * with the field named.
 */
export function bindRequest(
  route: RestRoute,
  pathParams: Record<string, string | undefined>,
  query: URLSearchParams,
  body: JsonValue | undefined,
): Message {
  const schema = route.method.input;
  let json: JsonObject = {};
  if (route.body === "*") {
    if (body !== undefined) {
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new FieldError("(body)", "must be a JSON object");
      }
      json = { ...body };
    }
  } else if (route.body !== "") {
    if (body !== undefined) json[route.body] = body;
  }
  if (route.body !== "*") {
    for (const key of new Set(query.keys())) {
      for (const value of query.getAll(key)) assignPath(json, schema, key, value);
    }
  }
  for (const field of route.pathFields) {
    const raw = pathParams[field];
    if (raw === undefined || raw === "") throw new FieldError(field, "is required in the path");
    delete json[field];
    assignPath(json, schema, field, raw);
  }
  const protoJson = restToProtoJson(schema, json);
  try {
    return fromJson(schema, protoJson, { ignoreUnknownFields: false });
  } catch (err) {
    // The shape check above catches nearly everything; what remains are value formats
    // (a malformed timestamp, bad base64). Name the field when protobuf's message does.
    const message = err instanceof Error ? err.message : String(err);
    const match = /field ([\w.]+)/.exec(message);
    const field = match?.[1]?.split(".").pop() ?? "(body)";
    throw new FieldError(field, message.replace(/^cannot decode [^:]*: /, ""));
  }
}
