import { describe, expect, it } from "vitest";
import { create, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { errorInfoOf } from "@clasper/core";
import {
  AppendAuditRequestSchema,
  GovernanceService,
  IngestSpansRequestSchema,
  ListTracesRequestSchema,
  PreflightRequestSchema,
  ScoreRiskRequestSchema,
  SpanKind,
  SpanStatusCode,
} from "@clasper/proto";
import { firstNulString } from "../src/nul-strings.js";
import { validationInterceptor } from "../src/validation.js";

const at = <Desc extends DescMessage>(desc: Desc, init: Parameters<typeof create<Desc>>[1]) => firstNulString(desc, create(desc, init));

describe("firstNulString", () => {
  it("names the first string holding U+0000: scalar, list item, map key and value, nested Struct", () => {
    expect(at(ListTracesRequestSchema, { workspaceId: "ws\u0000" })).toBe("workspace_id");
    expect(at(ScoreRiskRequestSchema, { toolNames: ["ok", "b\u0000d"] })).toBe("tool_names[1]");
    expect(at(PreflightRequestSchema, { skillVersions: { search: "1.0.0\u0000" } })).toBe('skill_versions["search"]');
    expect(at(PreflightRequestSchema, { skillVersions: { "se\u0000arch": "1.0.0" } })).toBe('skill_versions["se\\u0000arch"]');
    expect(at(AppendAuditRequestSchema, { eventType: "x", eventData: { ok: "fine", note: ["a", "b\u0000"] } })).toBe(
      'event_data.fields["note"].list_value.values[1].string_value',
    );
  });

  it("passes strings without it, and span content (the trace store replaces the character)", () => {
    expect(at(ListTracesRequestSchema, { workspaceId: "ws-1", model: "gpt-4o" })).toBeUndefined();
    expect(at(PreflightRequestSchema, { skillVersions: { search: "1.0.0" }, toolNames: ["a"] })).toBeUndefined();
    const span = {
      traceId: "0".repeat(31) + "1",
      spanId: "0".repeat(15) + "1",
      name: "chat\u0000",
      kind: SpanKind.CLIENT,
      status: { code: SpanStatusCode.OK, message: "" },
    };
    expect(at(IngestSpansRequestSchema, { spans: [span] as never })).toBeUndefined();
  });
});

describe("validationInterceptor", () => {
  it("refuses a valid request whose string holds U+0000 as InvalidArgument naming the field", async () => {
    let served = 0;
    const transport = createRouterTransport(
      ({ service }) => {
        service(GovernanceService, {
          scoreRisk() {
            served++;
            return {};
          },
        });
      },
      { router: { interceptors: [validationInterceptor() as Interceptor] } },
    );
    const client = createClient(GovernanceService, transport);
    const err = await client.scoreRisk({ toolCount: 1, toolNames: ["shell\u0000"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(err as ConnectError)).toMatchObject({ code: "invalid_field", field: "tool_names[0]" });
    expect(served).toBe(0);
    await client.scoreRisk({ toolCount: 1, toolNames: ["shell"] });
    expect(served).toBe(1);
  });
});
