import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
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
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      // proto3 JSON writes 64-bit integers as strings; numbers are accepted on input.
      return { type: ["string", "integer"], format: "int64", pattern: "^-?\\d+$" };
    default:
      return { type: "integer", format: "int32" };
  }
}

/** Collects component schemas for every message reachable from the routes. */
class SchemaCollector {
  readonly components: Record<string, Schema> = {};

  ref(message: DescMessage): Schema {
    const known = WELL_KNOWN[message.typeName];
    if (known) return known;
    if (!(message.typeName in this.components)) {
      this.components[message.typeName] = {}; // placeholder breaks recursion
      this.components[message.typeName] = this.objectSchema(message, new Set());
    }
    return { $ref: `#/components/schemas/${message.typeName}` };
  }

  objectSchema(message: DescMessage, omit: Set<string>): Schema {
    const properties: Record<string, Schema> = {};
    for (const field of message.fields) {
      if (!omit.has(field.name)) properties[field.name] = this.fieldSchema(field);
    }
    return { type: "object", additionalProperties: false, properties };
  }

  singular(field: DescField, kind: "scalar" | "enum" | "message"): Schema {
    if (kind === "enum") return { type: ["string", "null"], enum: [...restEnumNames(field.enum!), null] };
    if (kind === "message") return this.ref(field.message!);
    return scalarSchema(field.scalar!);
  }

  fieldSchema(field: DescField): Schema {
    switch (field.fieldKind) {
      case "list":
        return { type: "array", items: this.singular(field, field.listKind) };
      case "map":
        return { type: "object", additionalProperties: this.singular(field, field.mapKind) };
      default:
        return this.singular(field, field.fieldKind);
    }
  }
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
      schema: collector.fieldSchema(input.fields.find((f) => f.name === name)!),
    }));
    if (route.body === "") {
      for (const field of input.fields) {
        if (route.pathFields.includes(field.name)) continue;
        parameters.push({ name: field.name, in: "query", required: false, schema: collector.fieldSchema(field) });
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
          : { description: "OK", content: { "application/json": { schema: collector.ref(route.method.output) } } },
        default: { description: "Error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
      },
    };
    if (route.body === "*") {
      operation.requestBody = {
        required: false,
        content: { "application/json": { schema: collector.objectSchema(input, new Set(route.pathFields)) } },
      };
    } else if (route.body !== "") {
      const field = input.fields.find((f) => f.name === route.body)!;
      operation.requestBody = { required: true, content: { "application/json": { schema: collector.fieldSchema(field) } } };
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
