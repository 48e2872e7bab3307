import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kysely } from "kysely";
// Fixture executions are written with SQL on the system's own database (the same helper the trace
// service's store suites use), so this test depends on neither span ingest nor a model provider.
import { ago, seedExecution, traceDb } from "../../../services/trace/test/query-fixtures.js";
import type { TraceDatabase } from "../../../services/trace/src/store/schema.js";
import { startOneProcess, type TestSystem } from "./support/system.js";

let sys: TestSystem;
let db: Kysely<TraceDatabase>;
let admin: string;
let viewer: string;
let other: string;
const ids: Record<string, string> = {};

beforeAll(async () => {
  sys = await startOneProcess();
  db = traceDb(sys.system.database);
  admin = await sys.token({ tenant_id: "traces-a", user_id: "ada", roles: ["admin"] });
  viewer = await sys.token({ tenant_id: "traces-a", user_id: "vic", roles: ["viewer"] });
  other = await sys.token({ tenant_id: "traces-b", user_id: "bob", roles: ["admin"] });
  ids.old = await seedExecution(db, { tenantId: "traces-a", startedAt: ago(200), labels: { env: "prod" } });
  ids.failed = await seedExecution(db, { tenantId: "traces-a", startedAt: ago(1), status: 3, errorCode: "provider_error", errorMessage: "upstream 500", llmCalls: [{ model: "gpt-4o", costMicros: 9000 }] });
  ids.ok = await seedExecution(db, {
    tenantId: "traces-a",
    startedAt: ago(0, 1000),
    input: "Summarise the ticket",
    output: "Done: summary posted.",
    labels: { env: "prod" },
    taskId: "task-42",
    llmCalls: [{ model: "gpt-4o-mini", costMicros: 1500, text: "Done: summary posted.", temperature: 0.2 }],
  });
  ids.foreign = await seedExecution(db, { tenantId: "traces-b", startedAt: ago(0, 500), taskId: "task-42", labels: { env: "prod" } });
});
afterAll(async () => {
  await sys?.stop();
});

describe("traces REST API through the gateway", () => {
  it("lists the caller's traces newest first, in the documented JSON shape, on both routes", async () => {
    for (const route of ["/traces", "/ops/api/traces"]) {
      const res = await sys.call("GET", route, { token: admin });
      expect(res.status).toBe(200);
      expect(res.body.traces.map((t: { trace_id: string }) => t.trace_id)).toEqual([ids.ok, ids.failed, ids.old]);
      expect(res.body).toMatchObject({ total: 3, has_more: false, next_cursor: "", limit: 50, offset: 0 });
      expect(res.body.traces[1]).toMatchObject({ status: "error", model: "gpt-4o", cost_micros: "9000", error_code: "provider_error", trust_status: "unverified" });
    }
  });

  it("filters and pages with a cursor", async () => {
    const errors = await sys.call("GET", "/traces?status=error", { token: admin });
    expect(errors.body.traces.map((t: { trace_id: string }) => t.trace_id)).toEqual([ids.failed]);
    const recent = await sys.call("GET", `/traces?start_time=${encodeURIComponent(ago(7).toISOString())}&label_key=env&label_value=prod`, { token: admin });
    expect(recent.body.traces.map((t: { trace_id: string }) => t.trace_id)).toEqual([ids.ok]);
    const cheap = await sys.call("GET", "/traces?max_cost_micros=2000&min_cost_micros=1000", { token: admin });
    expect(cheap.body.total).toBe(2);
    const page1 = await sys.call("GET", "/traces?limit=2", { token: admin });
    expect(page1.body).toMatchObject({ has_more: true, total: 3 });
    const page2 = await sys.call("GET", `/traces?limit=2&cursor=${page1.body.next_cursor}`, { token: admin });
    expect(page2.body.traces.map((t: { trace_id: string }) => t.trace_id)).toEqual([ids.old]);
    expect(page2.body.has_more).toBe(false);
  });

  it("answers 400 naming the field for bad query input", async () => {
    for (const [query, field] of [
      ["cursor=not-a-cursor!", "cursor"],
      ["limit=500", "limit"],
      ["limit=abc", "limit"],
      ["status=sideways", "status"],
      ["tenant_id=traces-b", "tenant_id"],
    ] as const) {
      const res = await sys.call("GET", `/traces?${query}`, { token: admin });
      expect(res.status, query).toBe(400);
      expect(res.body.error.field, query).toBe(field);
    }
    // A malformed timestamp is refused; the gateway's binder reports it as "(body)", not the field.
    expect((await sys.call("GET", "/traces?start_time=yesterday", { token: admin })).status).toBe(400);
    const both = await sys.call("GET", "/traces?label_value=prod", { token: admin });
    expect(both.status).toBe(400);
  });

  it("returns one trace with payloads to an admin and withholds them from a viewer", async () => {
    const full = await sys.call("GET", `/traces/${ids.ok}`, { token: admin });
    expect(full.status).toBe(200);
    expect(full.body.trace).toMatchObject({ trace_id: ids.ok, payload_withheld: false, input: { message: "Summarise the ticket" }, output: { message: "Done: summary posted." } });
    expect(full.body.trace.steps.map((s: { type: string }) => s.type)).toEqual(["llm_call"]);
    expect(full.body.trace.steps[0].llm_call.completion).toBe("Done: summary posted.");
    const withheld = await sys.call("GET", `/ops/api/traces/${ids.ok}`, { token: viewer });
    expect(withheld.status).toBe(200);
    expect(withheld.body.trace).toMatchObject({ payload_withheld: true, input: { message: "[Sensitive content withheld]" } });
    expect(JSON.stringify(withheld.body)).not.toContain("Summarise");
  });

  it("answers 404 for another tenant's trace on every trace route, and 400 for a malformed id", async () => {
    const foreign = ids.foreign!;
    const attempts: [string, string, unknown?][] = [
      ["GET", `/traces/${foreign}`],
      ["GET", `/ops/api/traces/${foreign}`],
      ["GET", `/traces/${foreign}/replay`],
      ["GET", `/traces/${foreign}/annotations`],
      ["POST", `/traces/${foreign}/label`, { labels: { stolen: "yes" } }],
      ["POST", `/traces/${foreign}/annotate`, { key: "note", value: "x" }],
      ["POST", "/traces/diff", { base_trace_id: ids.ok, compare_trace_id: foreign }],
    ];
    for (const [method, route, body] of attempts) {
      const res = await sys.call(method, route, { token: admin, ...(body ? { body } : {}) });
      expect(res.status, `${method} ${route}`).toBe(404);
      expect(res.body.error.code).toBe("not_found");
    }
    expect((await sys.call("GET", "/traces/not-a-trace-id", { token: admin })).status).toBe(400);
    expect((await sys.call("POST", "/traces/diff", { token: admin, body: { base_trace_id: ids.ok } })).status).toBe(400);
    const untouched = await sys.call("GET", `/traces/${foreign}`, { token: other });
    expect(untouched.body.trace.labels).toEqual({ env: "prod" });
  });

  it("serves stats, diff, labels, annotations (201), by-label, by-entity and replay", async () => {
    const stats = await sys.call("GET", "/traces/stats", { token: admin });
    expect(stats.status).toBe(200);
    expect(stats.body.stats).toMatchObject({ total_traces: "3", total_cost_micros: "11500" });

    const diff = await sys.call("POST", "/ops/api/traces/diff", { token: admin, body: { base_trace_id: ids.failed, compare_trace_id: ids.ok } });
    expect(diff.status).toBe(200);
    expect(diff.body.diff.model).toMatchObject({ base_model: "gpt-4o", compare_model: "gpt-4o-mini", changed: true });
    expect(diff.body.diff.summary.significant_changes).toContain("Error status changed");
    expect(diff.body.summary_text).toContain("Trace Diff:");

    const label = await sys.call("POST", `/traces/${ids.ok}/label`, { token: admin, body: { labels: { env: "staging" } } });
    expect(label.status).toBe(200);
    expect(label.body.labels).toEqual({ env: "staging" });
    expect((await sys.call("POST", `/traces/${ids.ok}/label`, { token: admin, body: { labels: { "bad key": "x" } } })).status).toBe(400);

    const note = await sys.call("POST", `/traces/${ids.ok}/annotate`, { token: admin, body: { key: "reviewed", value: "yes" } });
    expect(note.status).toBe(201);
    expect(note.body.annotation).toMatchObject({ trace_id: ids.ok, key: "reviewed", value: "yes", created_by: "ada" });
    expect((await sys.call("POST", `/traces/${ids.ok}/annotate`, { token: admin, body: { key: "", value: "x" } })).status).toBe(400);
    expect((await sys.call("POST", `/traces/${ids.ok}/annotate`, { token: viewer, body: { key: "k", value: "x" } })).status).toBe(403);
    const notes = await sys.call("GET", `/traces/${ids.ok}/annotations`, { token: viewer });
    expect(notes.body.annotations.map((a: { key: string }) => a.key)).toEqual(["reviewed"]);

    const byLabel = await sys.call("GET", "/traces/by-label?label_key=env&label_value=staging", { token: admin });
    expect(byLabel.body).toMatchObject({ count: 1, has_more: false });
    expect((await sys.call("GET", "/traces/by-label", { token: admin })).status).toBe(400);

    const byEntity = await sys.call("GET", "/traces/by-entity?task_id=task-42", { token: admin });
    expect(byEntity.body).toMatchObject({ entity_type: "task", entity_id: "task-42", count: 1 });
    expect(byEntity.body.traces[0].trace_id).toBe(ids.ok);
    expect((await sys.call("GET", "/traces/by-entity", { token: admin })).status).toBe(400);

    const replay = await sys.call("GET", `/traces/${ids.ok}/replay`, { token: admin });
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ trace_id: ids.ok, original_request: { message: "Summarise the ticket" }, model_settings: { model: "gpt-4o-mini", temperature: 0.2 } });
    expect(replay.body.llm_responses.map((r: { content: string }) => r.content)).toEqual(["Done: summary posted."]);
  });

  it("enforces retention for the caller's tenant only", async () => {
    const dry = await sys.call("POST", "/retention/enforce", { token: admin, body: { dry_run: true } });
    expect(dry.status).toBe(200);
    expect(dry.body.result).toMatchObject({ traces_deleted: "1", dry_run: true });
    const run = await sys.call("POST", "/retention/enforce", { token: admin, body: {} });
    expect(run.body.result).toMatchObject({ traces_deleted: "1", dry_run: false });
    expect((await sys.call("GET", `/traces/${ids.old}`, { token: admin })).status).toBe(404);
    const stats = await sys.call("GET", "/retention/stats", { token: admin });
    expect(stats.body.stats).toMatchObject({ trace_count: "2", old_trace_count: "0", needs_cleanup: false });
    expect(Date.parse(stats.body.stats.last_enforced_at)).not.toBeNaN();
    expect((await sys.call("GET", `/traces/${ids.foreign}`, { token: other })).status).toBe(200);
    expect((await sys.call("POST", "/retention/enforce", { token: viewer, body: {} })).status).toBe(403);
    expect((await sys.call("POST", "/retention/enforce", { token: admin, body: { dry_run: "maybe" } })).status).toBe(400);
    // A token bound to a workspace counts that workspace's traces only (the fixtures are in ws-1).
    const elsewhere = await sys.token({ tenant_id: "traces-a", user_id: "ada", roles: ["admin"], workspace_id: "ws-2" });
    expect((await sys.call("GET", "/retention/stats", { token: elsewhere })).body.stats).toMatchObject({ trace_count: "0", needs_cleanup: false });
    const here = await sys.token({ tenant_id: "traces-a", user_id: "ada", roles: ["admin"], workspace_id: "ws-1" });
    expect((await sys.call("GET", "/retention/stats", { token: here })).body.stats).toMatchObject({ trace_count: "2" });
  });
});
