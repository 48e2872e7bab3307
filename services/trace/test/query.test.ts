import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { sql, type Kysely } from "kysely";
import { errorInfoOf } from "@clasper/core";
import { testBackendFromEnv, useFreshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { EntityType, MessageRole, RiskLevel, StepType, TraceStatus, TrustStatus } from "@clasper/proto";
import { encodeCursor } from "../src/query/cursor.js";
import { WITHHELD } from "../src/query/view.js";
import { countTraces, listTraces, TOTAL_COUNT_CAP } from "../src/store/traces.js";
import type { TraceDatabase } from "../src/store/schema.js";
import { ago, hex, seedExecution, traceClient, traceDb, type TraceClient } from "./query-fixtures.js";

let database: FreshDatabase;
let db: Kysely<TraceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "trace", (fresh) => {
  database = fresh;
  db = traceDb(fresh);
});

/** Expects a ConnectError with this code and, when given, ErrorInfo.field. */
async function rejects(promise: Promise<unknown>, code: Code, field?: string): Promise<ConnectError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  const ce = err as ConnectError;
  expect(Code[ce.code]).toBe(Code[code]);
  if (field !== undefined) expect(errorInfoOf(ce)?.field).toBe(field);
  return ce;
}

describe(`ListTraces (${testBackendFromEnv()})`, () => {
  const tenant = "t-list";
  let api: TraceClient;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    api = traceClient(database, { tenantId: tenant });
    ids.a = await seedExecution(db, { tenantId: tenant, startedAt: ago(0, 50_000), workspaceId: "ws-a", agentRole: "support", labels: { env: "prod", team: "x" }, riskLevel: RiskLevel.HIGH, llmCalls: [{ model: "gpt-4o", costMicros: 5000 }] });
    ids.b = await seedExecution(db, { tenantId: tenant, startedAt: ago(0, 60_000), workspaceId: "ws-b", agentRole: "sales", status: TraceStatus.ERROR, errorCode: "provider_error", labels: { env: "dev" }, llmCalls: [{ model: "gpt-4o-mini", costMicros: 200 }] });
    ids.c = await seedExecution(db, { tenantId: tenant, startedAt: ago(2), workspaceId: "ws-a", agentRole: "support", status: TraceStatus.BLOCKED, labels: { team: "y" }, riskLevel: RiskLevel.LOW, llmCalls: [{ model: "gpt-4o", costMicros: 0 }] });
    ids.d = await seedExecution(db, { tenantId: tenant, startedAt: ago(10), workspaceId: "ws-a", agentRole: "support", llmCalls: [{ model: "claude", provider: "anthropic", costMicros: 12_000 }] });
    // Another tenant's traces never show up.
    await seedExecution(db, { tenantId: "t-list-other", startedAt: ago(0, 1000), workspaceId: "ws-a", labels: { env: "prod" } });
  });

  const list = async (req: Parameters<TraceClient["listTraces"]>[0]) => (await api.listTraces(req)).traces.map((t) => t.traceId);

  it("lists the tenant's traces newest first with summaries and an exact total", async () => {
    const res = await api.listTraces({});
    expect(res.traces.map((t) => t.traceId)).toEqual([ids.a, ids.b, ids.c, ids.d]);
    expect(res).toMatchObject({ total: 4, hasMore: false, nextCursor: "", limit: 50, offset: 0 });
    const first = res.traces[0]!;
    expect(first).toMatchObject({ workspaceId: "ws-a", agentRole: "support", status: TraceStatus.SUCCESS, model: "gpt-4o", costMicros: 5000n, environment: "prod", riskLevel: RiskLevel.HIGH, trustStatus: TrustStatus.UNVERIFIED, labels: { env: "prod", team: "x" } });
    expect(first.usage).toMatchObject({ promptTokens: 100n, completionTokens: 20n, totalTokens: 120n });
    expect(res.traces[3]!.environment).toBe("unknown");
  });

  it("applies every filter in the query", async () => {
    expect(await list({ workspaceId: "ws-a" })).toEqual([ids.a, ids.c, ids.d]);
    expect(await list({ agentRole: "sales" })).toEqual([ids.b]);
    expect(await list({ status: TraceStatus.ERROR })).toEqual([ids.b]);
    expect(await list({ status: TraceStatus.BLOCKED })).toEqual([ids.c]);
    expect(await list({ model: "gpt-4o" })).toEqual([ids.a, ids.c]);
    expect(await list({ startTime: timestampFromDate(ago(3)) })).toEqual([ids.a, ids.b, ids.c]);
    expect(await list({ endTime: timestampFromDate(ago(1)) })).toEqual([ids.c, ids.d]);
    expect(await list({ startTime: timestampFromDate(ago(3)), endTime: timestampFromDate(ago(1)) })).toEqual([ids.c]);
    expect(await list({ labelKey: "env" })).toEqual([ids.a, ids.b]);
    expect(await list({ labelKey: "env", labelValue: "prod" })).toEqual([ids.a]);
    expect(await list({ labelKey: "team", labelValue: "y" })).toEqual([ids.c]);
    expect(await list({ minCostMicros: 1000n })).toEqual([ids.a, ids.d]);
    expect(await list({ maxCostMicros: 200n })).toEqual([ids.b, ids.c]);
    expect(await list({ minCostMicros: 200n, maxCostMicros: 5000n })).toEqual([ids.a, ids.b]);
    expect(await list({ riskLevel: RiskLevel.HIGH })).toEqual([ids.a]);
    expect(await list({ trustStatus: TrustStatus.UNVERIFIED })).toHaveLength(4);
    expect(await list({ trustStatus: TrustStatus.VERIFIED })).toEqual([]);
    const filtered = await api.listTraces({ workspaceId: "ws-a", model: "gpt-4o" });
    expect(filtered.total).toBe(2);
  });

  it.runIf(testBackendFromEnv() === "postgres")("plans label listings per call (never a prepared statement) and other listings once", async () => {
    // One connection for the listings and the inspection: prepared statements live per session.
    const named = await db.transaction().execute(async (trx) => {
      const scope = { tenantId: tenant };
      for (let i = 0; i < 2; i++) {
        await listTraces(trx, scope, { labelKey: "env", labelValue: "prod" }, { limit: 5, offset: 0 }, { withTotal: true });
        await listTraces(trx, scope, { model: "gpt-4o" }, { limit: 5, offset: 0 }, { withTotal: true });
      }
      const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(trx);
      return rows.map((row) => row.statement);
    });
    expect(named.some((text) => text.includes(`"model" = $`))).toBe(true);
    expect(named.filter((text) => text.includes("labels @>"))).toEqual([]);
  });

  it("pages with offset and with a cursor, and the total ignores paging", async () => {
    const page1 = await api.listTraces({ limit: 3 });
    expect(page1.traces.map((t) => t.traceId)).toEqual([ids.a, ids.b, ids.c]);
    expect(page1).toMatchObject({ hasMore: true, total: 4, limit: 3 });
    expect(page1.nextCursor).not.toBe("");
    const page2 = await api.listTraces({ limit: 3, cursor: page1.nextCursor });
    expect(page2.traces.map((t) => t.traceId)).toEqual([ids.d]);
    expect(page2).toMatchObject({ hasMore: false, nextCursor: "", total: 4 });
    const byOffset = await api.listTraces({ limit: 2, offset: 2 });
    expect(byOffset.traces.map((t) => t.traceId)).toEqual([ids.c, ids.d]);
    expect(byOffset).toMatchObject({ offset: 2, hasMore: false });
    // With a cursor, offset is ignored (and reported as 0).
    const both = await api.listTraces({ limit: 3, cursor: page1.nextCursor, offset: 3 });
    expect(both.traces.map((t) => t.traceId)).toEqual([ids.d]);
    expect(both.offset).toBe(0);
    // Past the end: an empty page still reports the total.
    expect(await api.listTraces({ offset: 100 })).toMatchObject({ traces: [], total: 4, hasMore: false, nextCursor: "" });
  });

  it("counts at most the cap, so total is a lower bound for huge tenants", async () => {
    expect(await countTraces(db, { tenantId: tenant }, {}, 2)).toBe(2);
    expect(await countTraces(db, { tenantId: tenant }, {})).toBe(4);
    expect(TOTAL_COUNT_CAP).toBe(1000);
  });

  it("rejects a malformed cursor naming the field", async () => {
    for (const cursor of ["not-a-cursor!", "abc", encodeCursor({ startedAt: "yesterday", traceId: hex(16) }).slice(1), Buffer.from('["2026-01-01T00:00:00Z","XYZ"]').toString("base64url")]) {
      await rejects(api.listTraces({ cursor }), Code.InvalidArgument, "cursor");
    }
    await rejects(api.listTraces({ cursor: "x".repeat(600) }), Code.InvalidArgument, "cursor");
  });

  it("rejects bad input with the field named", async () => {
    await rejects(api.listTraces({ limit: 201 }), Code.InvalidArgument, "limit");
    await rejects(api.listTraces({ limit: -1 }), Code.InvalidArgument, "limit");
    await rejects(api.listTraces({ offset: -5 }), Code.InvalidArgument, "offset");
    await rejects(api.listTraces({ labelValue: "prod" }), Code.InvalidArgument, "(request)");
    await rejects(api.listTraces({ minCostMicros: 10n, maxCostMicros: 1n }), Code.InvalidArgument, "(request)");
    await rejects(api.listTraces({ minCostMicros: -1n }), Code.InvalidArgument, "min_cost_micros");
    await rejects(api.listTraces({ workspaceId: "w".repeat(129) }), Code.InvalidArgument, "workspace_id");
    await rejects(api.listTraces({ status: 99 as TraceStatus }), Code.InvalidArgument, "status");
    await rejects(api.listTraces({ startTime: timestampFromDate(ago(1)), endTime: timestampFromDate(ago(2)) }), Code.InvalidArgument, "end_time");
  });

  it("keeps a workspace-bound caller to its workspace", async () => {
    const bound = traceClient(database, { tenantId: tenant, workspaceId: "ws-b" });
    expect((await bound.listTraces({})).traces.map((t) => t.traceId)).toEqual([ids.b]);
    expect(await bound.listTraces({ workspaceId: "ws-b", status: TraceStatus.ERROR })).toMatchObject({ total: 1, traces: [{ traceId: ids.b }] });
    await rejects(bound.listTraces({ workspaceId: "ws-a" }), Code.PermissionDenied, "workspace_id");
    await rejects(bound.getTrace({ traceId: ids.a! }), Code.NotFound, "trace_id");
  });
});

describe(`cursor stability (${testBackendFromEnv()})`, () => {
  it("never repeats or skips a trace when newer traces arrive between pages, including same-millisecond starts", async () => {
    const tenant = "t-cursor";
    const api = traceClient(database, { tenantId: tenant });
    const base = ago(1);
    const seeded: string[] = [];
    // Five traces share one millisecond but differ in microseconds (only SQL can write those).
    for (let i = 0; i < 12; i++) seeded.push(await seedExecution(db, { tenantId: tenant, startedAt: new Date(base.getTime() - Math.floor(i / 5) * 1000) }));
    for (const [i, id] of seeded.slice(0, 5).entries()) {
      await db.updateTable("traces").set({ started_at: sql<Date>`started_at + ${`${i * 100 + 7} microseconds`}::interval` }).where("tenant_id", "=", tenant).where("trace_id", "=", id).execute();
    }
    const seen: string[] = [];
    let cursor = "";
    for (let pageNo = 0; pageNo < 20; pageNo++) {
      const page = await api.listTraces({ limit: 3, cursor }); // 3 puts a page boundary inside the same-millisecond group.
      seen.push(...page.traces.map((t) => t.traceId));
      // Newer traces land between page requests; they sort before the cursor and never appear.
      await seedExecution(db, { tenantId: tenant, startedAt: new Date() });
      if (!page.hasMore) break;
      cursor = page.nextCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...seeded].sort());
  });
});

describe(`GetTrace (${testBackendFromEnv()})`, () => {
  const tenant = "t-get";
  let traceId: string;
  beforeAll(async () => {
    traceId = await seedExecution(db, {
      tenantId: tenant,
      input: "What is the weather in Paris?",
      historyCount: 2,
      output: "It is sunny in Paris.",
      labels: { env: "prod" },
      taskId: "task-9",
      messageId: "msg-9",
      redactionTypes: ["email"],
      skillVersions: { weather: "1.2.0" },
      governance: { effect: "allow", riskLevel: "medium", riskScore: 30, reasons: ["ok"] },
      llmCalls: [
        { model: "gpt-4o", input: 500, output: 50, cacheRead: 200, reasoning: 10, costMicros: 3000, toolCalls: [{ id: "call-1", name: "get_weather", arguments: { city: "Paris" } }] },
        { model: "gpt-4o", input: 600, output: 30, costMicros: 2000, text: "It is sunny in Paris." },
      ],
      tools: [{ id: "call-1", name: "get_weather", arguments: { city: "Paris" }, result: { temp: 21, sky: "sunny" } }],
    });
  });

  it("returns summary, steps in order, tool calls, links, usage and payloads for an admin", async () => {
    const { trace } = await traceClient(database, { tenantId: tenant }).getTrace({ traceId });
    expect(trace).toMatchObject({ traceId, status: TraceStatus.SUCCESS, environment: "prod", payloadWithheld: false, redactionApplied: true, redactionTypes: ["email"], skillVersions: { weather: "1.2.0" }, costMicros: 5000n });
    expect(trace!.entityLinks).toMatchObject({ taskId: "task-9", messageId: "msg-9", documentId: "" });
    expect(trace!.input).toMatchObject({ message: "What is the weather in Paris?", messageHistoryCount: 2 });
    expect(trace!.output?.message).toBe("It is sunny in Paris.");
    expect(trace!.steps.map((s) => s.type)).toEqual([StepType.GOVERNANCE_DECISION, StepType.LLM_CALL, StepType.TOOL_CALL, StepType.TOOL_RESULT, StepType.LLM_CALL]);
    const [gov, llm1, call, result, llm2] = trace!.steps;
    expect(gov!.detail).toMatchObject({ case: "governanceDecision", value: { riskLevel: RiskLevel.MEDIUM, riskScore: 30, reasons: ["ok"] } });
    expect(llm1!.detail).toMatchObject({ case: "llmCall", value: { model: "gpt-4o", provider: "openai", costMicros: 3000n, hasToolCalls: true, finishReason: "tool_calls" } });
    // input_tokens include the cache reads (OpenTelemetry); prompt_tokens excludes them.
    expect(llm1!.detail.case === "llmCall" && llm1!.detail.value.usage).toMatchObject({ promptTokens: 300n, cacheReadTokens: 200n, completionTokens: 50n, reasoningTokens: 10n, totalTokens: 550n });
    expect(call!.detail).toMatchObject({ case: "toolCall", value: { toolCallId: "call-1", toolName: "get_weather", permitted: true } });
    expect(call!.detail.case === "toolCall" && call!.detail.value.arguments?.kind).toMatchObject({ case: "structValue" });
    expect(result!.detail).toMatchObject({ case: "toolResult", value: { toolCallId: "call-1", success: true } });
    expect(llm2!.detail).toMatchObject({ case: "llmCall", value: { completion: "It is sunny in Paris." } });
    expect(trace!.output?.toolCalls).toHaveLength(1);
    expect(trace!.output?.toolCalls[0]).toMatchObject({ toolCallId: "call-1", toolName: "get_weather", success: true, permitted: true });
    expect(trace!.output?.toolCalls[0]?.result).toBeDefined();
    expect(trace!.usage).toMatchObject({ promptTokens: 900n, cacheReadTokens: 200n, completionTokens: 80n, totalTokens: 1180n });
  });

  it("withholds payloads from callers without trace:view_payloads", async () => {
    for (const role of ["viewer", "operator", "release_manager"]) {
      const { trace } = await traceClient(database, { tenantId: tenant, roles: [role] }).getTrace({ traceId });
      expect(trace!.payloadWithheld).toBe(true);
      expect(trace!.input?.message).toBe(WITHHELD);
      expect(trace!.output?.message).toBe(WITHHELD);
      for (const step of trace!.steps) {
        if (step.detail.case === "llmCall") expect(step.detail.value.completion).toBe("");
        if (step.detail.case === "toolCall") expect(step.detail.value.arguments).toBeUndefined();
        if (step.detail.case === "toolResult") expect(step.detail.value.result).toBeUndefined();
      }
      expect(trace!.output?.toolCalls[0]?.toolName).toBe("get_weather");
      expect(trace!.output?.toolCalls[0]?.arguments).toBeUndefined();
      expect(trace!.output?.toolCalls[0]?.result).toBeUndefined();
      // Non-payload facts stay.
      expect(trace!.steps).toHaveLength(5);
      expect(trace!.costMicros).toBe(5000n);
      expect(JSON.stringify(trace, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toMatch(/Paris|sunny/);
    }
  });

  it("answers NotFound for another tenant's trace and for unknown ids, and validates the id", async () => {
    const other = traceClient(database, { tenantId: "t-get-other" });
    await rejects(other.getTrace({ traceId }), Code.NotFound, "trace_id");
    await rejects(traceClient(database, { tenantId: tenant }).getTrace({ traceId: hex(16) }), Code.NotFound, "trace_id");
    await rejects(other.getTrace({ traceId: "XYZ" }), Code.InvalidArgument, "trace_id");
    await rejects(other.getTrace({ traceId: traceId.toUpperCase() }), Code.InvalidArgument, "trace_id");
  });

  it("turns failed spans into error steps", async () => {
    const failed = await seedExecution(db, { tenantId: tenant, status: TraceStatus.ERROR, errorCode: "provider_error", errorMessage: "upstream 500", tools: [{ id: "c", name: "search", success: false }], llmCalls: [{ toolCalls: [{ id: "c", name: "search", arguments: {} }] }] });
    const { trace } = await traceClient(database, { tenantId: tenant }).getTrace({ traceId: failed });
    const errors = trace!.steps.filter((s) => s.type === StepType.ERROR).map((s) => s.detail.value);
    expect(errors).toEqual(expect.arrayContaining([expect.objectContaining({ code: "provider_error", message: "upstream 500", recoverable: false }), expect.objectContaining({ message: "tool failed" })]));
    expect(trace!.output?.toolCalls[0]).toMatchObject({ success: false });
    expect(trace).toMatchObject({ errorCode: "provider_error", errorMessage: "upstream 500", status: TraceStatus.ERROR });
  });
});

describe(`GetTraceStats (${testBackendFromEnv()})`, () => {
  it("aggregates the tenant's traces in the window", async () => {
    const tenant = "t-stats";
    await seedExecution(db, { tenantId: tenant, startedAt: ago(1), durationMs: 100, llmCalls: [{ input: 10, output: 5, costMicros: 100 }] });
    await seedExecution(db, { tenantId: tenant, startedAt: ago(1), durationMs: 300, status: TraceStatus.ERROR, llmCalls: [{ input: 20, output: 5, cacheRead: 5, costMicros: 300 }] });
    await seedExecution(db, { tenantId: tenant, startedAt: ago(1), durationMs: 200, status: TraceStatus.BLOCKED, llmCalls: [{ input: 0, output: 0, costMicros: 0 }] });
    await seedExecution(db, { tenantId: tenant, startedAt: ago(1), durationMs: 0, status: TraceStatus.SUCCESS, workspaceId: "ws-2", llmCalls: [{ input: 1, output: 1, costMicros: 1 }] });
    await seedExecution(db, { tenantId: tenant, startedAt: ago(40), durationMs: 999, llmCalls: [{ costMicros: 1_000_000 }] });
    await seedExecution(db, { tenantId: "t-stats-other", startedAt: ago(1), llmCalls: [{ costMicros: 7_000_000 }] });
    const api = traceClient(database, { tenantId: tenant });
    const { stats } = await api.getTraceStats({ startTime: timestampFromDate(ago(7)), workspaceId: "ws-1" });
    expect(stats).toMatchObject({ totalTraces: 3n, totalCostMicros: 400n, avgDurationMs: 200, errorRate: 1 / 3, blockedRate: 1 / 3 });
    expect(stats!.usage).toMatchObject({ promptTokens: 25n, cacheReadTokens: 5n, completionTokens: 10n, totalTokens: 40n });
    const all = await api.getTraceStats({});
    expect(all.stats).toMatchObject({ totalTraces: 5n, totalCostMicros: 1_000_401n });
    const empty = await api.getTraceStats({ startTime: timestampFromDate(ago(100)), endTime: timestampFromDate(ago(99)) });
    expect(empty.stats).toMatchObject({ totalTraces: 0n, errorRate: 0, avgDurationMs: 0 });
    await rejects(api.getTraceStats({ startTime: timestampFromDate(ago(1)), endTime: timestampFromDate(ago(2)) }), Code.InvalidArgument, "end_time");
    await rejects(api.getTraceStats({ workspaceId: "w".repeat(200) }), Code.InvalidArgument, "workspace_id");
  });
});

describe(`labels, by-label and by-entity (${testBackendFromEnv()})`, () => {
  const tenant = "t-labels";
  let api: TraceClient;
  let one: string;
  let two: string;
  beforeAll(async () => {
    api = traceClient(database, { tenantId: tenant });
    one = await seedExecution(db, { tenantId: tenant, startedAt: ago(0, 2000), labels: { stage: "canary" }, taskId: "task-1", documentId: "doc-1" });
    two = await seedExecution(db, { tenantId: tenant, startedAt: ago(0, 1000), taskId: "task-1", messageId: "msg-2" });
    await seedExecution(db, { tenantId: "t-labels-other", taskId: "task-1", labels: { stage: "canary" } });
  });

  it("replaces the whole label map, and {} clears it", async () => {
    const res = await api.labelTrace({ traceId: one, labels: { env: "prod", "team.name": "core" } });
    expect(res).toMatchObject({ traceId: one, labels: { env: "prod", "team.name": "core" } });
    expect((await api.getTrace({ traceId: one })).trace!.labels).toEqual({ env: "prod", "team.name": "core" });
    await api.labelTrace({ traceId: two, labels: { env: "dev" } });
    const cleared = await api.labelTrace({ traceId: two, labels: {} });
    expect(cleared.labels).toEqual({});
  });

  it("rejects bad labels and another tenant's trace", async () => {
    await rejects(api.labelTrace({ traceId: one, labels: { "bad key": "x" } }), Code.InvalidArgument);
    await rejects(api.labelTrace({ traceId: one, labels: { k: "v".repeat(257) } }), Code.InvalidArgument);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    await rejects(api.labelTrace({ traceId: one, labels: many }), Code.InvalidArgument, "labels");
    await rejects(traceClient(database, { tenantId: "t-labels-other" }).labelTrace({ traceId: one, labels: { x: "y" } }), Code.NotFound, "trace_id");
    await rejects(traceClient(database, { tenantId: tenant, roles: ["viewer"] }).labelTrace({ traceId: one, labels: {} }), Code.PermissionDenied);
    expect((await api.getTrace({ traceId: one })).trace!.labels).toEqual({ env: "prod", "team.name": "core" });
  });

  it("finds traces by label key, and by key and value, with cursor paging", async () => {
    await api.labelTrace({ traceId: two, labels: { env: "dev" } });
    const byKey = await api.listTracesByLabel({ labelKey: "env" });
    expect(byKey.traces.map((t) => t.traceId)).toEqual([two, one]);
    expect(byKey).toMatchObject({ count: 2, hasMore: false });
    expect((await api.listTracesByLabel({ labelKey: "env", labelValue: "prod" })).traces.map((t) => t.traceId)).toEqual([one]);
    const p1 = await api.listTracesByLabel({ labelKey: "env", limit: 1 });
    expect(p1).toMatchObject({ count: 1, hasMore: true });
    const p2 = await api.listTracesByLabel({ labelKey: "env", limit: 1, cursor: p1.nextCursor });
    expect(p2.traces.map((t) => t.traceId)).toEqual([one]);
    expect((await api.listTracesByLabel({ labelKey: "stage" })).count).toBe(0);
    await rejects(api.listTracesByLabel({ labelKey: "" }), Code.InvalidArgument, "label_key");
    await rejects(api.listTracesByLabel({ labelKey: "env", limit: 501 }), Code.InvalidArgument, "limit");
    await rejects(api.listTracesByLabel({ labelKey: "env", cursor: "%%%" }), Code.InvalidArgument, "cursor");
  });

  it("finds traces by task, document or message within the tenant", async () => {
    const byTask = await api.listTracesByEntity({ entity: { case: "taskId", value: "task-1" } });
    expect(byTask).toMatchObject({ entityType: EntityType.TASK, entityId: "task-1", count: 2 });
    expect(byTask.traces.map((t) => t.traceId)).toEqual([two, one]);
    expect(byTask.traces[1]!.entityLinks).toMatchObject({ taskId: "task-1", documentId: "doc-1" });
    expect((await api.listTracesByEntity({ entity: { case: "documentId", value: "doc-1" } })).traces.map((t) => t.traceId)).toEqual([one]);
    const byMessage = await api.listTracesByEntity({ entity: { case: "messageId", value: "msg-2" } });
    expect(byMessage).toMatchObject({ entityType: EntityType.MESSAGE, count: 1 });
    expect((await api.listTracesByEntity({ entity: { case: "taskId", value: "nope" } })).count).toBe(0);
    const paged = await api.listTracesByEntity({ entity: { case: "taskId", value: "task-1" }, limit: 1 });
    expect(paged).toMatchObject({ count: 1, hasMore: true });
    await rejects(api.listTracesByEntity({}), Code.InvalidArgument);
    await rejects(api.listTracesByEntity({ entity: { case: "taskId", value: "" } }), Code.InvalidArgument, "task_id");
    await rejects(api.listTracesByEntity({ entity: { case: "taskId", value: "t".repeat(129) } }), Code.InvalidArgument, "task_id");
  });
});

describe(`GetReplayContext (${testBackendFromEnv()})`, () => {
  const tenant = "t-replay";
  let traceId: string;
  beforeAll(async () => {
    traceId = await seedExecution(db, {
      tenantId: tenant,
      environment: "staging",
      input: "Book a table",
      historyCount: 2,
      sessionKey: "user:u1:assistant",
      taskId: "task-7",
      skillVersions: { booking: "2.0.0" },
      workspaceVersionHash: "0123456789abcdef",
      llmCalls: [
        {
          model: "gpt-4o",
          temperature: 0.3,
          maxTokens: 512,
          systemPrompt: "You are a booking agent.",
          inputMessages: [
            { role: "system", parts: [{ type: "text", content: "You are a booking agent." }] },
            { role: "user", parts: [{ type: "text", content: "Hi" }] },
            { role: "assistant", parts: [{ type: "text", content: "Hello!" }] },
            { role: "user", parts: [{ type: "text", content: "Book a table" }] },
          ],
          toolCalls: [{ id: "call-1", name: "book", arguments: { seats: 2 } }],
        },
        { model: "gpt-4o-mini", text: "Booked for two." },
      ],
      tools: [{ id: "call-1", name: "book", arguments: { seats: 2 }, result: { ok: true, ref: "R1" } }],
    });
  });

  it("returns the original request, settings and recorded responses in order", async () => {
    const ctx = await traceClient(database, { tenantId: tenant }).getReplayContext({ traceId });
    expect(ctx).toMatchObject({ traceId, workspaceId: "ws-1", environment: "staging", workspaceVersionHash: "0123456789abcdef", skillVersions: { booking: "2.0.0" }, complete: true, missing: [] });
    expect(ctx.modelSettings).toMatchObject({ provider: "openai", model: "gpt-4o", fallbackModel: "gpt-4o-mini", temperature: 0.3, maxTokens: 512 });
    expect(ctx.originalRequest).toMatchObject({ source: "send", userId: "user-1", sessionKey: "user:u1:assistant", agentRole: "assistant", message: "Book a table", taskId: "task-7", systemPrompt: "You are a booking agent." });
    expect(ctx.originalRequest!.messages.map((m) => [m.role, m.content])).toEqual([
      [MessageRole.USER, "Hi"],
      [MessageRole.ASSISTANT, "Hello!"],
    ]);
    expect(ctx.llmResponses.map((r) => [r.sequence, r.model, r.content, r.finishReason])).toEqual([
      [0, "gpt-4o", "", "tool_calls"],
      [1, "gpt-4o-mini", "Booked for two.", "stop"],
    ]);
    expect(ctx.llmResponses[0]!.toolCalls).toHaveLength(1);
    expect(ctx.llmResponses[0]!.toolCalls[0]).toMatchObject({ toolCallId: "call-1", toolName: "book" });
    expect(ctx.llmResponses[0]!.toolCalls[0]!.arguments?.kind.case).toBe("structValue");
    expect(ctx.toolResults).toHaveLength(1);
    expect(ctx.toolResults[0]).toMatchObject({ toolCallId: "call-1", toolName: "book", success: true });
    expect(ctx.toolResults[0]!.result?.kind.case).toBe("structValue");
  });

  it("leaves payloads out for non-admins and says so", async () => {
    const ctx = await traceClient(database, { tenantId: tenant, roles: ["operator"] }).getReplayContext({ traceId });
    expect(ctx.complete).toBe(false);
    expect(ctx.missing).toContain("payloads_withheld");
    expect(ctx.originalRequest).toMatchObject({ message: "", systemPrompt: "", messages: [] });
    expect(ctx.llmResponses.map((r) => r.content)).toEqual(["", ""]);
    expect(ctx.llmResponses[0]!.toolCalls).toEqual([]);
    expect(ctx.toolResults[0]!.result).toBeUndefined();
    expect(ctx.modelSettings?.model).toBe("gpt-4o");
  });

  it("reports what a summary-only trace lacks, and NotFound across tenants", async () => {
    const bare = await seedExecution(db, { tenantId: tenant, withSpans: false, workspaceVersionHash: "" });
    const ctx = await traceClient(database, { tenantId: tenant }).getReplayContext({ traceId: bare });
    expect(ctx.complete).toBe(false);
    expect(ctx.missing).toEqual(expect.arrayContaining(["steps", "input_message", "workspace_version"]));
    await rejects(traceClient(database, { tenantId: "t-replay-other" }).getReplayContext({ traceId }), Code.NotFound, "trace_id");
    await rejects(traceClient(database, { tenantId: tenant }).getReplayContext({ traceId: "123" }), Code.InvalidArgument, "trace_id");
  });
});
