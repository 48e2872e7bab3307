import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { errorInfoOf } from "@clasper/core";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import { TraceSchema, TraceStatus } from "@clasper/proto";
import { diffTraces } from "../src/query/diff.js";
import type { TraceDatabase } from "../src/store/schema.js";
import { hex, seedExecution, traceClient, traceDb, type TraceClient } from "./query-fixtures.js";

let database: FreshDatabase;
let db: Kysely<TraceDatabase>;
let api: TraceClient;
const tenant = "t-diff";
beforeAll(async () => {
  database = await freshDatabase("trace");
  db = traceDb(database);
  api = traceClient(database, { tenantId: tenant });
});
afterAll(async () => {
  await database?.drop();
});

describe(`DiffTraces (${testBackendFromEnv()})`, () => {
  let base: string;
  let compare: string;
  beforeAll(async () => {
    base = await seedExecution(db, {
      tenantId: tenant,
      durationMs: 1000,
      workspaceVersionHash: "aaaaaaaaaaaaaaaa",
      skillVersions: { search: "1.0.0", mail: "1.0.0", old: "0.1.0" },
      output: "The answer is 42.",
      llmCalls: [
        { model: "gpt-4o", input: 1000, output: 100, cacheRead: 400, costMicros: 10_000, toolCalls: [{ id: "a", name: "search", arguments: { q: "x" } }] },
        { model: "gpt-4o", input: 500, output: 50, costMicros: 5_000, text: "The answer is 42." },
      ],
      tools: [{ id: "a", name: "search", arguments: { q: "x" }, result: { hits: 1 } }],
    });
    compare = await seedExecution(db, {
      tenantId: tenant,
      durationMs: 1500,
      workspaceVersionHash: "bbbbbbbbbbbbbbbb",
      skillVersions: { search: "1.1.0", mail: "1.0.0", fresh: "1.0.0" },
      output: "The answer is 43, probably.",
      status: TraceStatus.ERROR,
      errorCode: "tool_timeout",
      errorMessage: "fetch timed out",
      llmCalls: [
        { model: "gpt-4o-mini", input: 1200, output: 80, cacheRead: 100, cacheWrite: 50, reasoning: 30, costMicros: 2_000, toolCalls: [{ id: "b", name: "search", arguments: { q: "y" } }] },
        { model: "gpt-4o-mini", input: 700, output: 60, costMicros: 1_000, toolCalls: [{ id: "c", name: "fetch", arguments: {} }] },
        { model: "gpt-4o-mini", input: 100, output: 10, costMicros: 500, text: "The answer is 43, probably." },
      ],
      tools: [
        { id: "b", name: "search", arguments: { q: "y" }, result: { hits: 1 } },
        { id: "c", name: "fetch", arguments: {}, success: false },
      ],
    });
  });

  it("reports model, token, cost, step, tool, output, error, skill and workspace differences", async () => {
    const { diff, summaryText } = await api.diffTraces({ baseTraceId: base, compareTraceId: compare });
    expect(diff).toMatchObject({ baseTraceId: base, compareTraceId: compare });
    expect(diff!.context).toMatchObject({ sameWorkspace: true, sameAgent: true });
    expect(diff!.timing).toMatchObject({ baseDurationMs: 1000n, compareDurationMs: 1500n, deltaMs: 500n, percentChange: 50 });
    expect(diff!.model).toMatchObject({ baseModel: "gpt-4o", compareModel: "gpt-4o-mini", changed: true });
    expect(diff!.workspace).toMatchObject({ baseHash: "aaaaaaaaaaaaaaaa", compareHash: "bbbbbbbbbbbbbbbb", changed: true });
    expect(diff!.skills).toMatchObject({ added: ["fresh"], removed: ["old"], unchanged: ["mail"] });
    expect(diff!.skills!.changed).toEqual([expect.objectContaining({ name: "search", baseVersion: "1.0.0", compareVersion: "1.1.0" })]);
    // Input tokens count cache reads and writes: base 1500, compare 2000 (input_tokens already include cache).
    expect(diff!.usage).toMatchObject({ baseInputTokens: 1500n, compareInputTokens: 2000n, baseOutputTokens: 150n, compareOutputTokens: 150n, inputTokenDelta: 500n, outputTokenDelta: 0n, totalTokenDelta: 500n });
    expect(diff!.cost).toMatchObject({ baseCostMicros: 15_000n, compareCostMicros: 3_500n, deltaMicros: -11_500n });
    expect(diff!.cost!.percentChange).toBeCloseTo(-76.667, 2);
    expect(diff!.toolCalls).toMatchObject({ added: ["fetch"], removed: [], baseCount: 1, compareCount: 2, unchangedCount: 0 });
    expect(diff!.toolCalls!.changed).toEqual([expect.objectContaining({ toolName: "search", index: 0, argumentsChanged: true, resultChanged: false, successChanged: false })]);
    // base: llm, call, result, llm; compare: llm, call, result, llm, call, result, error, llm (+ root error).
    expect(diff!.steps).toMatchObject({ baseStepCount: 4, llmCallCountDelta: 1, toolCallCountDelta: 1 });
    expect(diff!.steps!.errorCountDelta).toBeGreaterThanOrEqual(1);
    expect(diff!.steps!.structuralDifferences).toBeGreaterThan(0);
    expect(diff!.output).toMatchObject({ baseHasOutput: true, compareHasOutput: true, messagesEqual: false, baseMessageLength: 17, compareMessageLength: 27, messageLengthDelta: 10 });
    expect(diff!.errors).toMatchObject({ baseError: "", compareError: "fetch timed out", baseHasError: false, compareHasError: true });
    expect(diff!.summary!.significantChanges).toEqual([
      "Model changed",
      "Workspace changed",
      "Skill versions changed",
      "Tool calls differ",
      "Error status changed",
      "Cost changed significantly",
      "Output message differs",
    ]);
    expect(diff!.summary!.totalDifferences).toBe(7);
    expect(summaryText).toContain(`Trace Diff: ${base} vs ${compare}`);
    expect(summaryText).toContain("Model: gpt-4o (openai) -> gpt-4o-mini (openai)");
    expect(summaryText).toContain("Cost: $0.0150 -> $0.0035 (-76.7%)");
    expect(summaryText).toContain("Duration: 1000ms -> 1500ms (+500ms)");
    expect(summaryText).toContain("Reasoning tokens: 0 -> 30 (+30)");
    expect(summaryText).toContain("Added: fetch");
    expect(summaryText).toContain("Skill search: 1.0.0 -> 1.1.0");
  });

  it("finds no significant change between a trace and itself, and omits the text on request", async () => {
    const { diff, summaryText } = await api.diffTraces({ baseTraceId: base, compareTraceId: base, includeSummary: false });
    expect(diff!.summary).toMatchObject({ significantChanges: [], totalDifferences: 0 });
    expect(diff!.toolCalls).toMatchObject({ unchangedCount: 1, added: [], removed: [], changed: [] });
    expect(diff!.steps!.structuralDifferences).toBe(0);
    expect(summaryText).toBe("");
    expect((await api.diffTraces({ baseTraceId: base, compareTraceId: base })).summaryText).toContain("No significant changes detected.");
  });

  it("answers NotFound naming the side for unknown or other-tenant ids", async () => {
    const foreign = await seedExecution(db, { tenantId: "t-diff-other" });
    for (const [req, field] of [
      [{ baseTraceId: foreign, compareTraceId: base }, "base_trace_id"],
      [{ baseTraceId: base, compareTraceId: foreign }, "compare_trace_id"],
      [{ baseTraceId: base, compareTraceId: hex(16) }, "compare_trace_id"],
    ] as const) {
      const err = await api.diffTraces(req).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.NotFound);
      expect(errorInfoOf(err as ConnectError)?.field).toBe(field);
    }
    const bad = await api.diffTraces({ baseTraceId: "nope", compareTraceId: base }).catch((e: unknown) => e);
    expect((bad as ConnectError).code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(bad as ConnectError)?.field).toBe("base_trace_id");
    const viewer = await traceClient(database, { tenantId: tenant, roles: ["viewer"] }).diffTraces({ baseTraceId: base, compareTraceId: compare }).catch((e: unknown) => e);
    expect((viewer as ConnectError).code).toBe(Code.PermissionDenied);
  });
});

describe("diffTraces rules", () => {
  const trace = (init: Parameters<typeof create<typeof TraceSchema>>[1]) => create(TraceSchema, { traceId: hex(16), ...init });

  it("treats a cost appearing from zero as significant and leaves percent unset", () => {
    const d = diffTraces(trace({ costMicros: 0n }), trace({ costMicros: 10n }));
    expect(d.cost!.percentChange).toBeUndefined();
    expect(d.summary!.significantChanges).toContain("Cost changed significantly");
  });

  it("does not flag a cost change of 20% or less", () => {
    const d = diffTraces(trace({ costMicros: 100n }), trace({ costMicros: 120n }));
    expect(d.cost!.percentChange).toBeCloseTo(20);
    expect(d.summary!.significantChanges).not.toContain("Cost changed significantly");
  });

  it("flags a provider change as a model change", () => {
    const d = diffTraces(trace({ model: "m", provider: "openai" }), trace({ model: "m", provider: "azure.ai.openai" }));
    expect(d.model!.changed).toBe(true);
    expect(d.summary!.significantChanges).toEqual(["Model changed"]);
  });
});
