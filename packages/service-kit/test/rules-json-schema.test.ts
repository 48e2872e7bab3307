import { describe, expect, it } from "vitest";
import type { DescMessage } from "@bufbuild/protobuf";
import {
  AppendAuditRequestSchema,
  LabelTraceRequestSchema,
  PreflightRequestSchema,
  ScoreRiskRequestSchema,
  SendMessageRequestSchema,
  SetRetentionPolicyRequestSchema,
} from "@clasper/proto";
import { fieldRulesSchema } from "../src/rules-json-schema.js";

const rulesOf = (desc: DescMessage, name: string) => fieldRulesSchema(desc.fields.find((f) => f.name === name)!);

describe("fieldRulesSchema", () => {
  it("turns numeric bounds, string rules and list and map sizes into JSON Schema keywords", () => {
    expect(rulesOf(SetRetentionPolicyRequestSchema, "retention_days")).toEqual({ keywords: { minimum: 1, maximum: 3650 }, required: false });
    expect(rulesOf(ScoreRiskRequestSchema, "tool_count")).toEqual({ keywords: { minimum: 0, maximum: 1000 }, required: false });
    expect(rulesOf(ScoreRiskRequestSchema, "tool_names")).toEqual({ keywords: { maxItems: 500 }, items: { maxLength: 256 }, required: false });
    expect(rulesOf(PreflightRequestSchema, "skill_versions")).toMatchObject({ keywords: { maxProperties: 200 }, required: false });
    expect(rulesOf(LabelTraceRequestSchema, "trace_id")).toEqual({ keywords: { pattern: "^[0-9a-f]{32}$" }, required: true });
  });

  it("marks a field required when its rules say so, or when its checked zero value breaks them", () => {
    expect(rulesOf(AppendAuditRequestSchema, "event_type")?.required).toBe(true);
    // An optional (explicit presence) field is checked only when given.
    expect(rulesOf(SetRetentionPolicyRequestSchema, "retention_days")?.required).toBe(false);
  });

  it("lets a field skipped at its zero value (IGNORE_IF_ZERO_VALUE) be empty", () => {
    expect(rulesOf(SendMessageRequestSchema, "workspace_id")).toEqual({
      keywords: { anyOf: [{ const: "" }, { maxLength: 128, pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]*$" }] },
      required: false,
    });
  });
});
