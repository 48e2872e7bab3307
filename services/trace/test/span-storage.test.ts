import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql, type Kysely } from "kysely";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import { GENAI_OPERATION } from "@clasper/telemetry";
import type { TraceDatabase } from "../src/store/schema.js";
import { TRACE_SCHEMA } from "../src/server.js";
import { execution, hex, span, traceHarness, type TraceHarness } from "./ingest-fixtures.js";
import { traceClient } from "./query-fixtures.js";

/*
 * Span payloads are stored as JSON text (attributes_json, events_json) since migration
 * 20261127000000_span_payload_text; rows written before keep them in jsonb. The same spans must
 * answer every query the same way in both forms. The legacy rows here are what the previous
 * ingest wrote: the same row with the payload as jsonb and the text columns null.
 */

let database: FreshDatabase;
let db: Kysely<TraceDatabase>;
let harness: TraceHarness;

beforeAll(async () => {
  database = await freshDatabase("trace");
  db = database.forSchema<TraceDatabase>(TRACE_SCHEMA);
  harness = traceHarness(database);
});
afterAll(async () => {
  await database?.drop();
});

const CURRENT = "t-store-text";
const LEGACY = "t-store-jsonb";

/** Copies the tenant's spans and traces to `to`, with the span payload in the legacy jsonb columns. */
async function copyAsLegacy(from: string, to: string): Promise<void> {
  await sql`
    insert into trace.spans (tenant_id, trace_id, span_id, parent_span_id, name, kind, operation, start_time, end_time,
      status_code, status_message, attributes, events, service_name, received_at)
    select ${to}, trace_id, span_id, parent_span_id, name, kind, operation, start_time, end_time,
      status_code, status_message, attributes_json::jsonb, events_json::jsonb, service_name, received_at
    from trace.spans where tenant_id = ${from}`.execute(db);
  await sql`
    insert into trace.traces
    select (jsonb_populate_record(null::trace.traces, to_jsonb(t) || jsonb_build_object('tenant_id', ${to}::text))).*
    from trace.traces t where tenant_id = ${from}`.execute(db);
}

describe(`span payload storage (${testBackendFromEnv()})`, () => {
  const succeeded = execution({ content: "refund for order 42 (\"quoted\", back\\slash, é, 😀)" });
  const failed = execution({ content: "the same question", error: "search backend timed out" });
  const withEvents = (() => {
    const traceId = hex(16);
    return [
      span({ traceId, operation: GENAI_OPERATION.invokeAgent, startMs: 0, endMs: 50, attrs: { "clasper.task.id": "task-events" } }),
      span({
        traceId,
        operation: GENAI_OPERATION.executeTool,
        startMs: 5,
        endMs: 40,
        error: "boom",
        attrs: { "gen_ai.tool.name": "lookup", "custom.numbers": ["1", "2"], "custom.flag": true, "custom.ratio": 0.25 },
        events: [
          { name: "exception", time: { seconds: 1_790_000_000n, nanos: 20_123_000 }, attributes: [{ key: "exception.message", value: { value: { case: "stringValue", value: "lookup failed" } } }] },
        ],
      }),
    ];
  })();
  const traceIds = [succeeded, failed, withEvents].map((spans) => spans[0]!.traceId!);

  beforeAll(async () => {
    for (const spans of [succeeded, failed, withEvents]) {
      await harness.client.ingestSpans({ spans }, await harness.as(CURRENT));
    }
    await copyAsLegacy(CURRENT, LEGACY);
  });

  it("writes new spans as JSON text only", async () => {
    const rows = await db.selectFrom("spans").select(["attributes", "events", "attributes_json", "events_json"]).where("tenant_id", "=", CURRENT).execute();
    expect(rows).toHaveLength(succeeded.length + failed.length + withEvents.length);
    for (const row of rows) {
      expect(row).toMatchObject({ attributes: null, events: null });
      expect(typeof JSON.parse(row.attributes_json!)).toBe("object");
      expect(Array.isArray(JSON.parse(row.events_json!))).toBe(true);
    }
  });

  it("keeps start and end times to the microsecond", async () => {
    const { rows } = await sql<{ start: string }>`
      select to_char(start_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as start
      from trace.spans where tenant_id = ${CURRENT} and trace_id = ${traceIds[2]!} and operation = 'execute_tool'`.execute(db);
    expect(rows).toEqual([{ start: "2026-09-21T14:13:20.005000" }]);
  });

  it("answers GetTrace, GetReplayContext, DiffTraces and ListTracesByEntity the same for both forms", async () => {
    const answers = async (tenantId: string) => {
      const client = traceClient(database, { tenantId });
      const [a, b, c] = traceIds as [string, string, string];
      return {
        traces: await Promise.all(traceIds.map(async (traceId) => (await client.getTrace({ traceId })).trace)),
        replays: await Promise.all(traceIds.map((traceId) => client.getReplayContext({ traceId }))),
        diff: await client.diffTraces({ baseTraceId: a, compareTraceId: b, includeSummary: true }),
        diffEvents: await client.diffTraces({ baseTraceId: b, compareTraceId: c, includeSummary: true }),
        byTask: await client.listTracesByEntity({ entity: { case: "taskId", value: "task-9" } }),
        byEventsTask: await client.listTracesByEntity({ entity: { case: "taskId", value: "task-events" } }),
      };
    };
    const current = await answers(CURRENT);
    const legacy = await answers(LEGACY);
    expect(current.traces.every((trace) => trace !== undefined && trace.steps.length > 0)).toBe(true);
    // Both forms hold the payload: the steps carry the text with its quotes, escapes and emoji.
    expect(JSON.stringify(current.replays[0], (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))).toContain("back\\\\slash, é, 😀");
    expect(current.traces[2]!.steps.some((step) => step.detail.case === "error" && step.detail.value.message === "lookup failed")).toBe(true);
    expect(current.byTask.traces).toHaveLength(2);
    expect(legacy).toEqual(current);
  });
});
