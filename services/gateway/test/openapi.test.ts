import { describe, expect, it } from "vitest";
import { GovernanceService, RuntimeService, TraceService } from "@clasper/proto";
import { buildOpenApi } from "../src/openapi.js";
import { restRoutes } from "../src/route-table.js";

type Schema = Record<string, unknown> & { properties?: Record<string, Schema>; required?: string[] };
interface Operation {
  parameters: { name: string; in: string; required: boolean; schema: Schema }[];
  requestBody?: { required: boolean; content: { "application/json": { schema: Schema } } };
}

const doc = buildOpenApi(restRoutes([RuntimeService, TraceService, GovernanceService]), "test") as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};
const body = (path: string, verb: string): Schema => doc.paths[path]![verb]!.requestBody!.content["application/json"].schema;
const component = (name: string): Schema => doc.components.schemas[name]!;

describe("OpenAPI document: the contracts' rules", () => {
  it("requires the fields validation requires, and the body that carries them", () => {
    const send = body("/api/agents/send", "post");
    expect(send.required).toEqual(expect.arrayContaining(["user_id", "session_key", "message"]));
    expect(send.required).not.toContain("task_id");
    expect(doc.paths["/api/agents/send"]!["post"]!.requestBody!.required).toBe(true);
    // A list with a minimum size cannot be left out.
    expect(body("/compact", "post").required).toContain("messages");
    // Nothing required: the body may be left out.
    expect(doc.paths["/budget/check"]!["post"]!.requestBody!.required).toBe(false);
  });

  it("carries lengths, patterns and sizes, and lets a field that may be left out be null", () => {
    const send = body("/api/agents/send", "post").properties!;
    expect(send["user_id"]).toMatchObject({ type: "string", minLength: 1 });
    expect(send["task_id"]).toMatchObject({ type: ["string", "null"], maxLength: 128 });
    expect(send["messages"]).toMatchObject({ type: ["array", "null"], maxItems: 500 });
    // A list of enum values takes names only: null (the zero value) is refused as an item.
    const patterns = body("/ops/api/redaction-rules", "put").properties!["pii_patterns"]!;
    expect((patterns as { items: Schema }).items).toMatchObject({ type: "string" });
    expect((patterns as { items: { enum: unknown[] } }).items.enum).not.toContain(null);
  });

  it("writes 64-bit integers as decimal strings or exact JSON numbers, with their bounds", () => {
    const limit = body("/budget", "post").properties!["limit_micros"]!;
    expect(limit).toMatchObject({
      anyOf: [
        { type: "string", pattern: "^0*[1-9]\\d*$" },
        { type: "integer", maximum: Number.MAX_SAFE_INTEGER },
      ],
      exclusiveMinimum: 0,
      maximum: 1e15,
    });
    expect(body("/budget", "post").required).toContain("limit_micros");
    const estimate = body("/budget/check", "post").properties!["estimated_cost_micros"]!;
    expect(estimate).toMatchObject({ anyOf: [{ anyOf: [{ type: "string", pattern: "^\\d+$" }, { type: "integer" }], minimum: 0 }, { type: "null" }] });
  });

  it("marks query parameters required by their rules, never null", () => {
    const params = doc.paths["/traces/by-label"]!["get"]!.parameters;
    expect(params.find((p) => p.name === "label_key")).toMatchObject({ required: true, schema: { type: "string", minLength: 1, maxLength: 128 } });
    expect(params.find((p) => p.name === "label_value")).toMatchObject({ required: false, schema: { type: "string", maxLength: 256 } });
  });

  it("keeps response schemas free of request rules: a message on both sides has two components", () => {
    expect(component("clasper.common.v1.ChatMessage.Input").required).toBeDefined();
    expect(component("clasper.common.v1.ChatMessage.Input").properties!["content"]).toHaveProperty("maxLength");
    const output = component("clasper.trace.v1.Trace");
    expect(output.required).toBeUndefined();
    expect(JSON.stringify(output)).not.toMatch(/minLength|maxLength|pattern":"\^\[/);
    expect(output.properties!["trace_id"]).toEqual({ type: "string" });
  });
});
