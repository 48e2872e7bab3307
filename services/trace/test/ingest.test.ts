import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { sql, type Kysely } from "kysely";
import { errorInfoOf } from "@clasper/core";
import { testBackendFromEnv, useFreshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { GovernanceService, RedactionStrategy, TraceStatus } from "@clasper/proto";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import { INGEST_LIMITS, TRUNCATION_MARKER } from "../src/ingest/limits.js";
import { decodeSpanPayload } from "../src/store/span-payload.js";
import { upsertRetentionPolicy } from "../src/store/retention.js";
import type { TraceDatabase } from "../src/store/schema.js";
import { TRACE_SCHEMA } from "../src/server.js";
import { attributes, batches, execution, hex, shuffled, span, traceHarness, type SpanInit, type TraceHarness } from "./ingest-fixtures.js";

let database: FreshDatabase;
let db: Kysely<TraceDatabase>;
let harness: TraceHarness;
useFreshDatabase({ beforeAll, afterAll }, "trace", (fresh) => {
  database = fresh;
  db = fresh.forSchema<TraceDatabase>(TRACE_SCHEMA);
  harness = traceHarness(fresh);
});

async function ingest(tenantId: string, spans: SpanInit[], h: TraceHarness = harness) {
  return h.client.ingestSpans({ spans }, await h.as(tenantId));
}

/** The summary row without bookkeeping columns, for comparing two assemblies. */
async function summary(tenantId: string, traceId: string) {
  const row = await db.selectFrom("traces").selectAll().where("tenant_id", "=", tenantId).where("trace_id", "=", traceId).executeTakeFirst();
  if (!row) return undefined;
  const { updated_at: _updated, tenant_id: _tenant, ...rest } = row;
  return rest;
}

/** The tenant's stored spans, with the payload decoded (never the legacy jsonb columns). */
async function storedSpans(tenantId: string, traceId?: string) {
  let query = db.selectFrom("spans").select(["span_id", "operation", "attributes", "events", "payload"]).where("tenant_id", "=", tenantId);
  if (traceId !== undefined) query = query.where("trace_id", "=", traceId);
  return (await query.execute()).map((row) => {
    expect(row).toMatchObject({ attributes: null, events: null });
    return { span_id: row.span_id, operation: row.operation, ...decodeSpanPayload(row.payload!) };
  });
}

async function ingestError(tenantId: string, spans: SpanInit[]): Promise<{ code: Code; field: string | undefined }> {
  try {
    await ingest(tenantId, spans);
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, field: errorInfoOf(e)?.field };
  }
  throw new Error("expected the batch to be refused");
}

describe(`IngestSpans (${testBackendFromEnv()})`, () => {
  it("stores the spans and assembles the trace summary", async () => {
    const spans = execution();
    const traceId = spans[0]!.traceId!;
    const res = await ingest("t-basic", spans);
    expect(res).toMatchObject({ accepted: 9, duplicate: 0, sampledOut: 0 });
    const row = await summary("t-basic", traceId);
    expect(row).toMatchObject({
      status: TraceStatus.SUCCESS,
      execution_id: `exec-${traceId.slice(0, 8)}`,
      workspace_id: "ws-1",
      environment: "prod",
      agent_role: "support",
      user_id: "user-7",
      model: "gpt-4o-mini",
      provider: "openai",
      workspace_version_hash: "sha256:abc",
      skill_versions: { triage: "1.2.0", search: "0.3.1" },
      input_message: "Summarise the open tasks please",
      input_history_count: 4,
      output_message: "Done: Summarise the open tasks",
      task_id: "task-9",
      message_id: "msg-3",
      document_id: null,
      source: "send",
      // Chat spans only: the 999,999 on invoke_agent is a total, not one more call.
      input_tokens: 3003n,
      output_tokens: 603n,
      cache_read_tokens: 300n,
      cache_write_tokens: 30n,
      reasoning_tokens: 15n,
      cost_micros: 4503n,
      llm_call_count: 3,
      tool_call_count: 4,
      span_count: 9,
      risk_score: 62,
      risk_level: 3,
      decision_id: "dec-1",
      duration_ms: 4000n,
      error_code: null,
      redaction_types: [],
    });
    expect(row?.started_at.getTime()).toBe(1_790_000_000_000);
    expect(row?.completed_at?.getTime()).toBe(1_790_000_004_000);
    const stored = await storedSpans("t-basic");
    expect(stored).toHaveLength(9);
    expect(stored.filter((s) => s.operation === GENAI_OPERATION.chat)).toHaveLength(3);
  });

  it("is idempotent: a re-sent batch stores nothing and leaves the summary unchanged", async () => {
    const spans = execution({ error: "search backend timed out" });
    const traceId = spans[0]!.traceId!;
    expect(await ingest("t-resend", spans)).toMatchObject({ accepted: 9, duplicate: 0 });
    const before = await summary("t-resend", traceId);
    expect(before).toMatchObject({ status: TraceStatus.ERROR, error_code: "tool_failed", input_tokens: 3003n, cost_micros: 4503n });
    expect(await ingest("t-resend", spans)).toMatchObject({ accepted: 0, duplicate: 9, sampledOut: 0 });
    expect(await ingest("t-resend", shuffled(spans, 7).slice(0, 4))).toMatchObject({ accepted: 0, duplicate: 4 });
    expect(await summary("t-resend", traceId)).toEqual(before);
    // The same span twice in one batch is one span.
    const again = execution();
    expect(await ingest("t-resend", [...again, again[2]!])).toMatchObject({ accepted: 9, duplicate: 1 });
  });

  it("stores a batch sent several times at once exactly once", async () => {
    const spans = execution({ error: "search backend timed out" });
    const traceId = spans[0]!.traceId!;
    await ingest("t-race-ref", spans);
    const reference = await summary("t-race-ref", traceId);
    // Each copy but one meets the others' rows in its first insert and goes again, span by span.
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => ingest("t-race", i % 2 ? spans : shuffled(spans, i))));
    expect(results.reduce((n, r) => n + r.accepted, 0)).toBe(9);
    expect(results.reduce((n, r) => n + r.duplicate, 0)).toBe(27);
    expect(await summary("t-race", traceId)).toEqual(reference);
  });

  it("folds only the new spans of a batch that repeats some stored ones", async () => {
    const spans = execution({ error: "search backend timed out", traceId: hex(16) });
    const traceId = spans[0]!.traceId!;
    await ingest("t-partial-ref", spans);
    const reference = await summary("t-partial-ref", traceId);
    const some = shuffled(spans, 3).slice(0, 4);
    expect(await ingest("t-partial", some)).toMatchObject({ accepted: 4, duplicate: 0 });
    expect(await ingest("t-partial", shuffled(spans, 5))).toMatchObject({ accepted: 5, duplicate: 4 });
    expect(await summary("t-partial", traceId)).toEqual(reference);
  });

  it("converges to the same summary whatever the order and batching of the spans", async () => {
    const spans = execution({ error: "search backend timed out", traceId: hex(16) });
    const traceId = spans[0]!.traceId!;
    await ingest("t-conv-ref", spans);
    const reference = await summary("t-conv-ref", traceId);
    expect(reference?.status).toBe(TraceStatus.ERROR);
    for (let seed = 1; seed <= 6; seed++) {
      const tenant = `t-conv-${seed}`;
      const parts = batches(shuffled(spans, seed), seed);
      // Odd seeds send the batches one after another, even seeds all at once.
      if (seed % 2) for (const part of parts) await ingest(tenant, part);
      else await Promise.all(parts.map((part) => ingest(tenant, part)));
      expect(await summary(tenant, traceId), `seed ${seed}`).toEqual(reference);
    }
  });

  it("reports a trace as running until its invoke_agent span arrives", async () => {
    const spans = execution();
    const traceId = spans[0]!.traceId!;
    await ingest("t-running", spans.slice(1));
    expect(await summary("t-running", traceId)).toMatchObject({ status: TraceStatus.RUNNING, execution_id: null, span_count: 8, duration_ms: 2990n });
    await ingest("t-running", spans.slice(0, 1));
    expect(await summary("t-running", traceId)).toMatchObject({ status: TraceStatus.SUCCESS, execution_id: `exec-${traceId.slice(0, 8)}`, span_count: 9, duration_ms: 4000n });
  });

  it("marks a trace blocked when the execution says so", async () => {
    const spans = execution({ attrs: { [ATTR.executionStatus]: "blocked" } }).slice(0, 2);
    await ingest("t-blocked", spans);
    expect(await summary("t-blocked", spans[0]!.traceId!)).toMatchObject({ status: TraceStatus.BLOCKED, llm_call_count: 0 });
  });

  it("keeps tenants apart even when they send the same trace and span ids, whatever the attributes claim", async () => {
    const shared = execution({ content: "shared ids" });
    const traceId = shared[0]!.traceId!;
    const forTenant = (tenant: string, other: string) =>
      shared.map((s) => ({
        ...s,
        attributes: [...(s.attributes ?? []), ...attributes({ tenant_id: other, "clasper.tenant.id": other, "tenant.marker": tenant })],
      }));
    const a = forTenant("t-iso-a", "t-iso-b");
    const b = forTenant("t-iso-b", "t-iso-a");
    const results = await Promise.all([
      ...batches(a, 3).map((part) => ingest("t-iso-a", part)),
      ...batches(b, 5).map((part) => ingest("t-iso-b", part)),
    ]);
    expect(results.reduce((n, r) => n + r.accepted, 0)).toBe(18);
    for (const [tenant, other] of [["t-iso-a", "t-iso-b"], ["t-iso-b", "t-iso-a"]] as const) {
      const rows = await storedSpans(tenant, traceId);
      expect(rows).toHaveLength(9);
      for (const row of rows) {
        expect(row.attributes["tenant.marker"]).toBe(tenant);
        // Kept as data, never used as the tenant.
        expect(row.attributes["tenant_id"]).toBe(other);
      }
      expect(await summary(tenant, traceId)).toMatchObject({ span_count: 9, input_tokens: 3003n, llm_call_count: 3 });
    }
    expect(await db.selectFrom("spans").select("span_id").where("tenant_id", "not in", ["t-iso-a", "t-iso-b"]).where("trace_id", "=", traceId).execute()).toEqual([]);
  });

  it("stores __proto__, constructor and prototype attribute keys as data and pollutes nothing", async () => {
    const traceId = hex(16);
    const hostile = span({
      traceId,
      operation: GENAI_OPERATION.executeTool,
      startMs: 0,
      endMs: 5,
      attrs: { ["__proto__"]: "polluted", constructor: "ctor", prototype: "proto", toString: "str", hasOwnProperty: "own" },
      events: [{ name: "note", attributes: attributes({ ["__proto__"]: "event-polluted" }) }],
    });
    expect(await ingest("t-proto", [hostile])).toMatchObject({ accepted: 1 });
    const [row] = await storedSpans("t-proto");
    expect(Object.keys(row!.attributes).sort()).toEqual(["__proto__", "constructor", "gen_ai.operation.name", "hasOwnProperty", "prototype", "toString"]);
    expect(Object.getOwnPropertyDescriptor(row!.attributes, "__proto__")?.value).toBe("polluted");
    expect(Object.getOwnPropertyDescriptor(row!.events[0]!.attributes, "__proto__")?.value).toBe("event-polluted");
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.prototype.toString.call([])).toBe("[object Array]");
    expect(typeof ({} as { constructor: unknown }).constructor).toBe("function");
  });

  it("drops spans that are not execution steps, counting them as sampled out", async () => {
    const traceId = hex(16);
    const rpc = span({ traceId, operation: "", startMs: 0, endMs: 1, name: "clasper.trace.v1.TraceService/ListTraces" });
    const res = await ingest("t-plumbing", [rpc, span({ traceId, operation: GENAI_OPERATION.chat, startMs: 0, endMs: 2 })]);
    expect(res).toMatchObject({ accepted: 1, duplicate: 0, sampledOut: 1 });
  });
});

describe(`IngestSpans limits (${testBackendFromEnv()})`, () => {
  const ok = () => span({ traceId: hex(16), operation: GENAI_OPERATION.chat, startMs: 0, endMs: 10 });

  it("refuses malformed ids naming the field (protovalidate)", async () => {
    expect(await ingestError("t-limits", [{ ...ok(), traceId: "XYZ" }])).toEqual({ code: Code.InvalidArgument, field: "spans[0].trace_id" });
    expect(await ingestError("t-limits", [ok(), { ...ok(), spanId: "abc" }])).toEqual({ code: Code.InvalidArgument, field: "spans[1].span_id" });
    expect(await ingestError("t-limits", [{ ...ok(), parentSpanId: "not-hex-at-all!!" }])).toEqual({ code: Code.InvalidArgument, field: "spans[0].parent_span_id" });
    expect(await ingestError("t-limits", [])).toEqual({ code: Code.InvalidArgument, field: "spans" });
  });

  it("refuses a span that ends before it starts", async () => {
    const bad = span({ traceId: hex(16), operation: GENAI_OPERATION.chat, startMs: 100, endMs: 50 });
    expect(await ingestError("t-limits", [ok(), bad])).toEqual({ code: Code.InvalidArgument, field: "spans[1].end_time" });
  });

  it("refuses times PostgreSQL cannot hold naming the field", async () => {
    const far = { seconds: 253_402_300_800n, nanos: 0 }; // 10000-01-01
    expect(await ingestError("t-limits", [ok(), { ...ok(), startTime: far, endTime: far }])).toEqual({ code: Code.InvalidArgument, field: "spans[1].start_time" });
    expect(await ingestError("t-limits", [{ ...ok(), endTime: far }])).toEqual({ code: Code.InvalidArgument, field: "spans[0].end_time" });
    const event = { ...ok(), events: [{ name: "ok" }, { name: "late", time: far }] };
    expect(await ingestError("t-limits", [event])).toEqual({ code: Code.InvalidArgument, field: "spans[0].events[1].time" });
  });

  it("refuses a missing start time and too many attributes naming the field", async () => {
    const { startTime: _s, ...noStart } = ok();
    expect(await ingestError("t-limits", [noStart])).toEqual({ code: Code.InvalidArgument, field: "spans[0].start_time" });
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
    expect(await ingestError("t-limits", [span({ traceId: hex(16), operation: GENAI_OPERATION.chat, startMs: 0, endMs: 1, attrs: many })])).toEqual({
      code: Code.InvalidArgument,
      field: "spans[0].attributes",
    });
  });

  it("refuses an oversize span and an oversize batch, and stores nothing of them", async () => {
    const traceId = hex(16);
    const chunk = "x".repeat(60 * 1024);
    const big = span({ traceId, operation: GENAI_OPERATION.chat, startMs: 0, endMs: 1, attrs: { a: chunk, b: chunk, c: chunk, d: chunk, e: chunk } });
    expect(await ingestError("t-limits-size", [ok(), big])).toEqual({ code: Code.InvalidArgument, field: "spans[1]" });
    const fits = (i: number) => span({ traceId, operation: GENAI_OPERATION.chat, startMs: i, endMs: i + 1, attrs: { a: chunk, b: chunk, c: chunk } });
    const batch = Array.from({ length: Math.ceil(INGEST_LIMITS.batchChars / (3 * chunk.length)) + 1 }, (_, i) => fits(i));
    expect(await ingestError("t-limits-size", batch)).toEqual({ code: Code.InvalidArgument, field: "spans" });
    expect(await db.selectFrom("spans").select("span_id").where("tenant_id", "=", "t-limits-size").execute()).toEqual([]);
  });

  it("cuts an over-long attribute value and marks it", async () => {
    const long = "y".repeat(INGEST_LIMITS.valueChars + 500);
    const s = span({ traceId: hex(16), operation: GENAI_OPERATION.executeTool, startMs: 0, endMs: 1, attrs: { [ATTR.toolCallResult]: long, "custom.list": [long] } });
    expect(await ingest("t-limits-cut", [s])).toMatchObject({ accepted: 1 });
    const [row] = await storedSpans("t-limits-cut");
    const stored = row!.attributes[ATTR.toolCallResult] as string;
    expect(stored).toHaveLength(INGEST_LIMITS.valueChars + TRUNCATION_MARKER.length);
    expect(stored.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect((row!.attributes["custom.list"] as string[])[0]).toHaveLength(INGEST_LIMITS.valueChars + TRUNCATION_MARKER.length);
  });

  it("stores text with NUL characters instead of failing the batch", async () => {
    const s = span({ traceId: hex(16), operation: GENAI_OPERATION.chat, startMs: 0, endMs: 1, attrs: { [ATTR.outputMessage]: "a\u0000b" }, error: "bad\u0000byte" });
    expect(await ingest("t-nul", [s])).toMatchObject({ accepted: 1 });
  });
});

describe(`IngestSpans redaction (${testBackendFromEnv()})`, () => {
  const PII = {
    email: "jane.doe@example.com",
    card: "4111 1111 1111 1111",
    phone: "+1 415-555-0132",
    key: "sk-proj-Abc123Def456Ghi789Jkl012Mno345",
  };
  const pii = (where: string) => `${where}: mail ${PII.email}, card ${PII.card}, call ${PII.phone}, key ${PII.key}`;

  it("removes PII from every stored column of spans and traces (canary)", async () => {
    const traceId = hex(16);
    const root = hex(8);
    const spans: SpanInit[] = [
      span({
        traceId,
        spanId: root,
        operation: GENAI_OPERATION.invokeAgent,
        startMs: 0,
        endMs: 100,
        error: pii("execution error"),
        attrs: {
          [ATTR.inputMessage]: pii("user message"),
          [ATTR.outputMessage]: pii("final answer"),
          [ATTR.errorType]: "provider_error",
          "custom.note": pii("unknown attribute"),
        },
      }),
      span({
        traceId,
        parentSpanId: root,
        operation: GENAI_OPERATION.chat,
        startMs: 1,
        endMs: 50,
        attrs: {
          [ATTR.inputMessages]: JSON.stringify([{ role: "user", parts: [{ type: "text", content: pii("prompt") }] }]),
          [ATTR.outputMessages]: JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: pii("completion") }] }]),
          [ATTR.systemInstructions]: pii("system"),
        },
        events: [{ name: "gen_ai.content.completion", attributes: attributes({ "gen_ai.completion": pii("event completion") }) }],
      }),
      span({
        traceId,
        parentSpanId: root,
        operation: GENAI_OPERATION.executeTool,
        startMs: 60,
        endMs: 90,
        error: pii("tool error"),
        attrs: {
          [ATTR.toolName]: "send_mail",
          [ATTR.toolCallArguments]: JSON.stringify({ to: PII.email, card: PII.card }),
          [ATTR.toolCallResult]: pii("tool result"),
          [ATTR.errorType]: "tool_failed",
          "custom.list": [pii("array item")],
        },
        events: [{ name: "exception", attributes: attributes({ "exception.message": pii("exception"), "exception.stacktrace": pii("stack") }) }],
      }),
    ];
    expect(await ingest("t-canary", spans)).toMatchObject({ accepted: 3 });

    // Every column as text; the span payload (bytes) also in the escape format, where each stored
    // string shows byte for byte (the needles are ASCII).
    const dump = async (table: string, bytes = sql`''`) =>
      (await sql<{ row: string }>`select t::text || ${bytes} as row from ${sql.table(`trace.${table}`)} t where tenant_id = 't-canary'`.execute(db)).rows
        .map((r) => r.row)
        .join("\n");
    const spansText = await dump("spans", sql`encode(t.payload, 'escape')`);
    const tracesText = await dump("traces");
    for (const stored of ["user message", "prompt", "event completion", "tool result", "array item", "stack"]) expect(spansText).toContain(stored);
    expect(tracesText).toContain("final answer");
    const needles = [PII.email, "4111", "415-555", "5550132", PII.key, "Abc123Def456"];
    for (const text of [spansText, tracesText]) {
      for (const needle of needles) expect(text, needle).not.toContain(needle);
    }
    const trace = await summary("t-canary", traceId);
    expect(trace?.redaction_types).toEqual(expect.arrayContaining(["credit_card", "email", "openai_key", "phone"]));
    expect(trace?.error_message).toContain("[EMAIL]");
    expect(trace).toMatchObject({ status: TraceStatus.ERROR, error_code: "provider_error" });
  });

  it("applies the tenant's governance rules and asks governance at most once per TTL", async () => {
    let fetches = 0;
    const governed = traceHarness(database, (router) =>
      router.service(GovernanceService, {
        getRedactionRules: () => {
          fetches += 1;
          return {
            rules: {
              enabled: true,
              strategy: RedactionStrategy.MASK,
              customRules: [{ name: "ticket", regex: "TCK-[0-9]{6}", replacement: "[TICKET]" }],
            },
          };
        },
      }),
    );
    const make = () => [span({ traceId: hex(16), operation: GENAI_OPERATION.chat, startMs: 0, endMs: 1, attrs: { [ATTR.outputMessage]: `see TCK-123456 and ${PII.email}` } })];
    await ingest("t-rules", make(), governed);
    await ingest("t-rules", make(), governed);
    expect(fetches).toBe(1);
    const rows = await storedSpans("t-rules");
    for (const row of rows) expect(row.attributes[ATTR.outputMessage]).toBe("see [TICKET] and [EMAIL]");
  });

  it("applies the summarize strategy: a finding's two first and last characters, credentials masked", async () => {
    const governed = traceHarness(database, (router) =>
      router.service(GovernanceService, { getRedactionRules: () => ({ rules: { enabled: true, strategy: RedactionStrategy.SUMMARIZE } }) }),
    );
    const traceId = hex(16);
    await ingest("t-summarize", [span({ traceId, operation: GENAI_OPERATION.chat, startMs: 0, endMs: 1, attrs: { [ATTR.outputMessage]: `mail ${PII.email} key ${PII.key}` } })], governed);
    const [row] = await storedSpans("t-summarize");
    expect(row?.attributes[ATTR.outputMessage]).toBe("mail ja..om key [OPENAI_KEY]");
  });
});

describe(`IngestSpans sampling (${testBackendFromEnv()})`, () => {
  it("errors_only keeps error traces and drops successful ones when they complete, also when re-sent", async () => {
    await upsertRetentionPolicy(db, "t-errors", { sampling_strategy: "errors_only" });
    const good = execution();
    const bad = execution({ error: "boom" });
    const goodId = good[0]!.traceId!;
    // Children first: the trace runs, then its invoke_agent span decides it.
    expect(await ingest("t-errors", good.slice(1))).toMatchObject({ accepted: 8, sampledOut: 0 });
    expect(await summary("t-errors", goodId)).toMatchObject({ status: TraceStatus.RUNNING });
    expect(await ingest("t-errors", good.slice(0, 1))).toMatchObject({ accepted: 0, sampledOut: 1 });
    expect(await summary("t-errors", goodId)).toBeUndefined();
    expect(await ingest("t-errors", good)).toMatchObject({ accepted: 0, duplicate: 0, sampledOut: 9 });
    expect(await ingest("t-errors", bad)).toMatchObject({ accepted: 9, sampledOut: 0 });
    expect(await summary("t-errors", bad[0]!.traceId!)).toMatchObject({ status: TraceStatus.ERROR });
    const stored = await db.selectFrom("spans").select("trace_id").distinct().where("tenant_id", "=", "t-errors").execute();
    expect(stored.map((r) => r.trace_id)).toEqual([bad[0]!.traceId]);
  });

  it("sampled keeps about sample_rate of the traces, the same ones every time, plus every error", async () => {
    await upsertRetentionPolicy(db, "t-sampled", { sampling_strategy: "sampled", sample_rate: 0.3 });
    const traces = Array.from({ length: 40 }, () => execution().slice(0, 3));
    let kept = 0;
    for (const trace of traces) {
      const res = await ingest("t-sampled", trace);
      expect(res.accepted + res.sampledOut).toBe(3);
      if (res.accepted === 3) kept += 1;
      // The decision is per trace: all of its spans agree.
      expect([0, 3]).toContain(res.accepted);
    }
    expect(kept).toBeGreaterThan(2);
    expect(kept).toBeLessThan(25);
    const errors = Array.from({ length: 5 }, () => execution({ error: "x" }));
    for (const trace of errors) expect(await ingest("t-sampled", trace)).toMatchObject({ accepted: 9 });
  });
});
