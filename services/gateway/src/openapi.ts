import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { fieldRulesSchema } from "@clasper/service-kit";
import { restEnumNames } from "./json-shape.js";
import type { RestRoute } from "./route-table.js";

type Schema = Record<string, unknown>;

const WELL_KNOWN: Record<string, Schema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?\\d+(\\.\\d+)?s$" },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.Empty": { type: "object" },
  "google.protobuf.FieldMask": { type: "string" },
  "google.protobuf.Any": { type: "object", additionalProperties: true },
  "google.protobuf.StringValue": { type: ["string", "null"] },
  "google.protobuf.BoolValue": { type: ["boolean", "null"] },
  "google.protobuf.Int32Value": { type: ["integer", "null"], format: "int32" },
  "google.protobuf.UInt32Value": { type: ["integer", "null"], format: "int32" },
  "google.protobuf.Int64Value": { type: ["string", "null"], format: "int64" },
  "google.protobuf.UInt64Value": { type: ["string", "null"], format: "int64" },
  "google.protobuf.DoubleValue": { type: ["number", "null"] },
  "google.protobuf.FloatValue": { type: ["number", "null"] },
  "google.protobuf.BytesValue": { type: ["string", "null"], format: "byte" },
};

/** A 64-bit integer: a decimal string, or a JSON number no larger than JavaScript holds exactly. */
function int64Schema(pattern: string, minimum: number): Schema {
  return {
    anyOf: [
      { type: "string", pattern },
      { type: "integer", minimum, maximum: Number.MAX_SAFE_INTEGER },
    ],
    format: "int64",
  };
}

function scalarSchema(type: ScalarType): Schema {
  switch (type) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", format: "byte" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return int64Schema("^\\d+$", 0);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      // proto3 JSON writes 64-bit integers as strings; numbers are accepted on input while exact.
      return int64Schema("^-?\\d+$", -Number.MAX_SAFE_INTEGER);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int64", minimum: 0, maximum: 2 ** 32 - 1 };
    default:
      return { type: "integer", format: "int32", minimum: -(2 ** 31), maximum: 2 ** 31 - 1 };
  }
}

/**
 * Which side of a call a schema describes. Requests carry the contracts' protovalidate rules
 * (lengths, patterns, bounds, presence) and accept `null` for any field that may be left out, as
 * proto3 JSON does; responses are what the gateway writes. A message that appears on both sides
 * gets one component per side (`<type>` and `<type>.Input`).
 */
type Side = "input" | "output";

/** `schema` that also accepts null. */
function orNull(schema: Schema): Schema {
  const type = schema["type"];
  if (typeof type === "string") return { ...schema, type: [type, "null"] };
  if (Array.isArray(type)) return type.includes("null") ? schema : { ...schema, type: [...type, "null"] };
  return { anyOf: [schema, { type: "null" }] };
}

/** Adds rule keywords to a schema; a `$ref` (which takes no siblings in every tool) is wrapped. */
function withKeywords(schema: Schema, keywords: Schema | undefined): Schema {
  if (!keywords || Object.keys(keywords).length === 0) return schema;
  if ("$ref" in schema) return { allOf: [schema, keywords] };
  if ("anyOf" in keywords) return { allOf: [schema, keywords] };
  return { ...schema, ...keywords };
}

/** Collects component schemas for every message reachable from the routes. */
class SchemaCollector {
  readonly components: Record<string, Schema> = {};

  ref(message: DescMessage, side: Side): Schema {
    const known = WELL_KNOWN[message.typeName];
    if (known) return known;
    const name = side === "input" ? `${message.typeName}.Input` : message.typeName;
    if (!(name in this.components)) {
      this.components[name] = {}; // placeholder breaks recursion
      this.components[name] = this.objectSchema(message, new Set(), side);
    }
    return { $ref: `#/components/schemas/${name}` };
  }

  objectSchema(message: DescMessage, omit: Set<string>, side: Side): Schema {
    const properties: Record<string, Schema> = {};
    const required: string[] = [];
    for (const field of message.fields) {
      if (omit.has(field.name)) continue;
      properties[field.name] = this.fieldSchema(field, side);
      if (side === "input" && fieldRulesSchema(field)?.required) required.push(field.name);
    }
    return { type: "object", additionalProperties: false, properties, ...(required.length > 0 ? { required } : {}) };
  }

  /** One value of the field; `item` for a request's list item or map value, where an enum's null (its zero) is refused. */
  singular(field: DescField, kind: "scalar" | "enum" | "message", side: Side, item = false): Schema {
    if (kind === "enum") return item ? { type: "string", enum: restEnumNames(field.enum!) } : { type: ["string", "null"], enum: [...restEnumNames(field.enum!), null] };
    if (kind === "message") return this.ref(field.message!, side);
    return scalarSchema(field.scalar!);
  }

  /** A field's schema; on the input side with its rules, and nullable unless it must be given. */
  fieldSchema(field: DescField, side: Side): Schema {
    const rules = side === "input" ? fieldRulesSchema(field) : undefined;
    let schema: Schema;
    switch (field.fieldKind) {
      case "list":
        schema = { type: "array", items: withKeywords(this.singular(field, field.listKind, side, side === "input"), rules?.items), ...rules?.keywords };
        break;
      case "map":
        schema = {
          type: "object",
          additionalProperties: withKeywords(this.singular(field, field.mapKind, side, side === "input"), rules?.items),
          ...(rules?.keys ? { propertyNames: rules.keys } : {}),
          ...rules?.keywords,
        };
        break;
      default:
        schema = withKeywords(this.singular(field, field.fieldKind, side), rules?.keywords);
        if (rules && Array.isArray(schema["anyOf"])) schema = { ...schema, anyOf: schema["anyOf"].map((branch: Schema) => withStringBound(branch, rules.keywords)) };
    }
    if (side === "output") return schema;
    if (!rules?.required) return orNull(schema);
    // A required enum's zero value (REST null) is what fails its rules.
    return field.fieldKind === "enum" ? { ...schema, type: "string", enum: restEnumNames(field.enum!) } : schema;
  }

  /** A path or query parameter's schema: the input rules, never null (a query string has no null). */
  parameterSchema(field: DescField): Schema {
    return withoutNull(this.fieldSchema(field, "input"));
  }
}

/**
 * A 64-bit integer's decimal-string branch narrowed to a lower bound of 0 or 1 (the bounds the
 * contracts use); the numeric keywords bind only the JSON-number branch.
 */
function withStringBound(branch: Schema, keywords: Schema): Schema {
  if (branch["type"] !== "string" || typeof branch["pattern"] !== "string") return branch;
  const min = keywords["minimum"] as number | undefined;
  const exclusiveMin = keywords["exclusiveMinimum"] as number | undefined;
  if (exclusiveMin === 0 || min === 1) return { ...branch, pattern: "^0*[1-9]\\d*$" };
  if (min === 0 || (exclusiveMin !== undefined && exclusiveMin > -1)) return { ...branch, pattern: "^\\d+$" };
  return branch;
}

function withoutNull(schema: Schema): Schema {
  const type = schema["type"];
  if (Array.isArray(type)) {
    const rest = type.filter((t) => t !== "null");
    const out: Schema = { ...schema, type: rest.length === 1 ? rest[0] : rest };
    if (Array.isArray(schema["enum"])) out["enum"] = (schema["enum"] as unknown[]).filter((v) => v !== null);
    return out;
  }
  const anyOf = schema["anyOf"];
  if (Array.isArray(anyOf) && anyOf.length === 2 && (anyOf[1] as Schema)["type"] === "null") return anyOf[0] as Schema;
  return schema;
}

const ERROR_SCHEMA: Schema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" }, field: { type: "string" } },
    },
  },
};

/** OpenAPI 3.1 for every REST route, generated from the same descriptors the gateway binds with. */
export function buildOpenApi(routes: readonly RestRoute[], version: string): Schema {
  const collector = new SchemaCollector();
  const paths: Record<string, Record<string, Schema>> = {};
  for (const route of routes) {
    const pathItem = (paths[route.template.replace(/\{([a-z0-9_.]+)(=[^}]*)?\}/g, "{$1}")] ??= {});
    const input = route.method.input;
    const parameters: Schema[] = route.pathFields.map((name) => ({
      name,
      in: "path",
      required: true,
      schema: collector.parameterSchema(input.fields.find((f) => f.name === name)!),
    }));
    if (route.body === "") {
      for (const field of input.fields) {
        if (route.pathFields.includes(field.name)) continue;
        const required = fieldRulesSchema(field)?.required ?? false;
        parameters.push({ name: field.name, in: "query", required, schema: collector.parameterSchema(field) });
      }
    }
    const streaming = route.method.methodKind === "server_streaming";
    const operation: Schema = {
      operationId: `${route.service.name}.${route.method.name}${route.template.startsWith("/ops/") ? ".ops" : ""}`,
      tags: [route.service.name],
      summary: `${route.service.typeName}/${route.method.name}`,
      parameters,
      responses: {
        [String(route.successStatus)]: streaming
          ? { description: "Server-Sent Events, one per response message", content: { "text/event-stream": { schema: { type: "string" } } } }
          : { description: "OK", content: { "application/json": { schema: collector.ref(route.method.output, "output") } } },
        default: { description: "Error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
      },
    };
    if (route.body === "*") {
      const schema = collector.objectSchema(input, new Set(route.pathFields), "input");
      // A body with a field that must be given cannot be left out.
      operation.requestBody = { required: "required" in schema, content: { "application/json": { schema } } };
    } else if (route.body !== "") {
      const field = input.fields.find((f) => f.name === route.body)!;
      operation.requestBody = { required: true, content: { "application/json": { schema: collector.fieldSchema(field, "input") } } };
    }
    pathItem[route.verb.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: { title: "Clasper API", version },
    servers: [{ url: "/" }],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: { Error: ERROR_SCHEMA, ...collector.components },
    },
  };
}
