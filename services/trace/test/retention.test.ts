import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { testBackendFromEnv, useFreshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { deleteTracesBefore } from "../src/store/retention.js";
import type { TraceDatabase } from "../src/store/schema.js";
import { ago, seedExecution, traceClient, traceDb } from "./query-fixtures.js";

let database: FreshDatabase;
let db: Kysely<TraceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "trace", (fresh) => {
  database = fresh;
  db = traceDb(fresh);
});

async function countRows(tenantId: string): Promise<{ traces: number; spans: number; annotations: number }> {
  const n = async (table: "traces" | "spans" | "trace_annotations") =>
    Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as("n")).where("tenant_id", "=", tenantId).executeTakeFirstOrThrow()).n);
  return { traces: await n("traces"), spans: await n("spans"), annotations: await n("trace_annotations") };
}

describe(`EnforceRetention and GetRetentionStats (${testBackendFromEnv()})`, () => {
  it("deletes exactly the tenant's traces older than its policy, with spans and annotations, and no other tenant's", async () => {
    const tenant = "t-ret";
    const api = traceClient(database, { tenantId: tenant, roles: ["release_manager"] });
    await api.setRetentionPolicy({ retentionDays: 30 });
    const keep = [await seedExecution(db, { tenantId: tenant, startedAt: ago(1) }), await seedExecution(db, { tenantId: tenant, startedAt: ago(29, -60_000) })];
    const old = [await seedExecution(db, { tenantId: tenant, startedAt: ago(30, 60_000) }), await seedExecution(db, { tenantId: tenant, startedAt: ago(400) })];
    for (const traceId of [...keep, ...old]) await api.annotateTrace({ traceId, key: "note", value: "x" });
    // Another tenant's equally old trace survives.
    const foreign = await seedExecution(db, { tenantId: "t-ret-other", startedAt: ago(400) });

    const before = await api.getRetentionStats({});
    expect(before.stats).toMatchObject({ traceCount: 4n, oldTraceCount: 2n, needsCleanup: true });
    expect(before.stats!.policy).toMatchObject({ retentionDays: 30, isDefault: false });
    expect(before.stats!.lastEnforcedAt).toBeUndefined();
    expect(timestampDate(before.stats!.oldestTraceAt!).getTime()).toBeLessThan(ago(399).getTime());

    const dry = await api.enforceRetention({ dryRun: true });
    expect(dry.result).toMatchObject({ tracesDeleted: 2n, dryRun: true });
    expect((await countRows(tenant)).traces).toBe(4);
    expect((await api.getRetentionStats({})).stats!.lastEnforcedAt).toBeUndefined();

    const run = await api.enforceRetention({ dryRun: false });
    expect(run.result).toMatchObject({ tracesDeleted: 2n, dryRun: false });
    const cutoff = timestampDate(run.result!.cutoffTime!).getTime();
    expect(Math.abs(cutoff - ago(30).getTime())).toBeLessThan(60_000);

    const remaining = await db.selectFrom("traces").select("trace_id").where("tenant_id", "=", tenant).execute();
    expect(remaining.map((r) => r.trace_id).sort()).toEqual([...keep].sort());
    const spansLeft = await db.selectFrom("spans").select("trace_id").distinct().where("tenant_id", "=", tenant).execute();
    expect(spansLeft.map((r) => r.trace_id).sort()).toEqual([...keep].sort());
    expect((await countRows(tenant)).annotations).toBe(2);
    expect(await db.selectFrom("traces").select("trace_id").where("trace_id", "=", foreign).executeTakeFirst()).toBeDefined();
    expect((await countRows("t-ret-other")).spans).toBeGreaterThan(0);

    const after = await api.getRetentionStats({});
    expect(after.stats).toMatchObject({ traceCount: 2n, oldTraceCount: 0n, needsCleanup: false });
    expect(Math.abs(timestampDate(after.stats!.lastEnforcedAt!).getTime() - Date.now())).toBeLessThan(60_000);
    // Recording the run does not turn a default policy into a set one (see the next test).
    expect((await api.enforceRetention({})).result!.tracesDeleted).toBe(0n);
  });

  it("uses the 90-day default for a tenant without a policy and keeps the policy a default", async () => {
    const tenant = "t-ret-default";
    const api = traceClient(database, { tenantId: tenant, roles: ["admin"] });
    await seedExecution(db, { tenantId: tenant, startedAt: ago(89) });
    await seedExecution(db, { tenantId: tenant, startedAt: ago(91) });
    expect((await api.enforceRetention({})).result!.tracesDeleted).toBe(1n);
    const stats = await api.getRetentionStats({});
    expect(stats.stats).toMatchObject({ traceCount: 1n, oldTraceCount: 0n });
    expect(stats.stats!.policy).toMatchObject({ retentionDays: 90, isDefault: true });
    expect(stats.stats!.lastEnforcedAt).toBeDefined();
    expect((await api.getRetentionPolicy({})).policy!.isDefault).toBe(true);
  });

  it("deletes in batches until nothing older is left, and removes orphan spans", async () => {
    const tenant = "t-ret-batch";
    for (let i = 0; i < 7; i++) await seedExecution(db, { tenantId: tenant, startedAt: ago(200, i * 1000) });
    await seedExecution(db, { tenantId: tenant, startedAt: ago(1) });
    // Spans whose trace row never arrived.
    await db.insertInto("spans").values({ tenant_id: tenant, trace_id: "f".repeat(32), span_id: "1".repeat(16), parent_span_id: null, name: "x", kind: 1, operation: "chat", start_time: ago(300), end_time: ago(300), status_code: 1, status_message: null, attributes: "{}", events: "[]", service_name: null }).execute();
    expect(await deleteTracesBefore(db, tenant, ago(100), 2)).toBe(7n);
    const left = await countRows(tenant);
    expect(left.traces).toBe(1);
    expect(await db.selectFrom("spans").select("span_id").where("tenant_id", "=", tenant).where("trace_id", "=", "f".repeat(32)).execute()).toEqual([]);
  });

  it("requires retention:modify to enforce and retention:view for stats", async () => {
    const operator = traceClient(database, { tenantId: "t-ret", roles: ["operator"] });
    const err = await operator.enforceRetention({}).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.PermissionDenied);
    expect((await operator.getRetentionStats({})).stats).toBeDefined();
    const viewer = await traceClient(database, { tenantId: "t-ret", roles: ["viewer"] }).getRetentionStats({}).catch((e: unknown) => e);
    expect((viewer as ConnectError).code).toBe(Code.PermissionDenied);
  });
});
