import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql, type Kysely } from "kysely";
import { testBackendFromEnv, useFreshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { ATTR, GENAI_OPERATION } from "@clasper/telemetry";
import type { TraceDatabase } from "../src/store/schema.js";
import { decodeSpanPayload } from "../src/store/span-payload.js";
import { TRACE_SCHEMA } from "../src/server.js";
import { attributes, execution, hex, span, traceHarness, type TraceHarness } from "./ingest-fixtures.js";
import { traceClient } from "./query-fixtures.js";

/*
 * Span attributes and events are stored in `payload` (store/span-payload.ts) since migration
 * 20261127000000_span_payload; rows written before keep them in jsonb. The same spans must answer
 * every query the same way in both forms. The legacy rows here are what the previous ingest wrote:
 * the same row with the attributes and events as jsonb and no payload.
 */

let database: FreshDatabase;
let db: Kysely<TraceDatabase>;
let harness: TraceHarness;
useFreshDatabase({ beforeAll, afterAll }, "trace", (fresh) => {
  database = fresh;
  db = fresh.forSchema<TraceDatabase>(TRACE_SCHEMA);
  harness = traceHarness(fresh);
});

const CURRENT = "t-store-text";
const LEGACY = "t-store-jsonb";

/** Copies the tenant's spans and traces to `to`, with the span payload in the legacy jsonb columns. */
async function copyAsLegacy(from: string, to: string): Promise<void> {
  const rows = await db.selectFrom("spans").selectAll().where("tenant_id", "=", from).execute();
  for (const { payload, received_at: _received, ...row } of rows) {
    const { attributes, events } = decodeSpanPayload(payload!);
    await db
      .insertInto("spans")
      .values({ ...row, tenant_id: to, attributes: JSON.stringify(attributes), events: JSON.stringify(events), payload: null })
      .execute();
  }
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
    const tool = span({
      traceId,
      operation: GENAI_OPERATION.executeTool,
      startMs: 5,
      endMs: 40,
      error: "boom",
      attrs: {
        [ATTR.toolName]: "lookup",
        "custom.numbers": ["1", "2"],
        "custom.flag": true,
        "custom.ratio": 0.25,
        "custom.negative": -42,
        "custom.unicode": "é😀\"quoted\" back\\slash",
        "custom.empty": "",
      },
      events: [
        { name: "exception", time: { seconds: 1_790_000_000n, nanos: 20_123_000 }, attributes: attributes({ "exception.message": "lookup failed" }) },
      ],
    });
    tool.attributes = [...(tool.attributes ?? []), { key: "custom.big", value: { value: { case: "intValue", value: 9_007_199_254_740_993n } } }];
    return [span({ traceId, operation: GENAI_OPERATION.invokeAgent, startMs: 0, endMs: 50, attrs: { [ATTR.taskId]: "task-events" } }), tool];
  })();
  const traceIds = [succeeded, failed, withEvents].map((spans) => spans[0]!.traceId!);

  beforeAll(async () => {
    for (const spans of [succeeded, failed, withEvents]) {
      await harness.client.ingestSpans({ spans }, await harness.as(CURRENT));
    }
    await copyAsLegacy(CURRENT, LEGACY);
  });

  it("writes new spans with the payload only", async () => {
    const rows = await db.selectFrom("spans").select(["attributes", "events", "payload"]).where("tenant_id", "=", CURRENT).execute();
    expect(rows).toHaveLength(succeeded.length + failed.length + withEvents.length);
    for (const row of rows) {
      expect(row).toMatchObject({ attributes: null, events: null });
      expect(row.payload?.length).toBeGreaterThan(0);
    }
  });

  it("reads back every kind of attribute value and event exactly", async () => {
    const [row] = await db.selectFrom("spans").select("payload").where("tenant_id", "=", CURRENT).where("trace_id", "=", traceIds[2]!).where("operation", "=", GENAI_OPERATION.executeTool).execute();
    const { attributes, events } = decodeSpanPayload(row!.payload!);
    expect({ ...attributes }).toEqual({
      [ATTR.operationName]: GENAI_OPERATION.executeTool,
      [ATTR.toolName]: "lookup",
      "custom.numbers": ["1", "2"],
      "custom.flag": true,
      "custom.ratio": 0.25,
      "custom.negative": -42,
      "custom.big": "9007199254740993",
      "custom.unicode": "é😀\"quoted\" back\\slash",
      "custom.empty": "",
    });
    expect(events).toEqual([{ name: "exception", time: "2026-09-21T14:13:20.020123Z", attributes: { "exception.message": "lookup failed" } }]);
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
