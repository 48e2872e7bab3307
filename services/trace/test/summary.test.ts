import { describe, expect, it } from "vitest";
import { clone, isMessage, toBinary, fromBinary } from "@bufbuild/protobuf";
import { TraceSummarySchema } from "@clasper/proto";
import { traceSummary } from "../src/query/view.js";
import type { TraceSummaryRow } from "../src/store/traces.js";

const row = (over: Partial<TraceSummaryRow>): TraceSummaryRow => ({
  trace_id: "ab".repeat(16),
  workspace_id: "ws-1",
  environment: null,
  agent_role: "support",
  status: 2,
  started_at: new Date("2026-01-02T03:04:05.678Z"),
  duration_ms: 1234n,
  model: "gpt-4o",
  provider: "openai",
  input_tokens: 500n,
  output_tokens: 50n,
  cache_read_tokens: 100n,
  cache_write_tokens: 0n,
  reasoning_tokens: 7n,
  cost_micros: 12_340n,
  skill_versions: { search: "1.0.0" },
  labels: { env: "prod" },
  risk_level: 2,
  tool_call_count: 3,
  error_code: null,
  task_id: "task-1",
  document_id: null,
  message_id: null,
  started_at_key: "2026-01-02T03:04:05.678000Z",
  ...over,
});

describe("traceSummary", () => {
  it("builds a complete message, equal to what protobuf builds from it by reflection", () => {
    for (const r of [row({}), row({ workspace_id: null, agent_role: null, model: null, provider: null, risk_level: null, error_code: "provider_error", task_id: null, labels: {} })]) {
      const summary = traceSummary(r, { reviewed: "yes" });
      expect(isMessage(summary, TraceSummarySchema)).toBe(true);
      // clone() creates the message through the descriptor: every field, nothing else.
      expect(summary).toStrictEqual(clone(TraceSummarySchema, summary));
      expect(fromBinary(TraceSummarySchema, toBinary(TraceSummarySchema, summary))).toStrictEqual(summary);
    }
  });
});
