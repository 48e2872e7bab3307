import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConnectError, createContextValues, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { buildPrincipal, callContextKey } from "@clasper/auth";
import { errorInfoOf } from "@clasper/core";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import {
  AppendAuditRequestSchema,
  AuditEventType,
  ExportAuditChainRequestSchema,
  GetAuditStatsRequestSchema,
  GovernanceService,
  ListAuditEntriesRequestSchema,
  VerifyAuditChainRequestSchema,
} from "@clasper/proto";
import { AuditHandlers, PROTO_AUDIT_EVENT_NAMES } from "../src/handlers/audit.js";
import { AUDIT_EVENT_TYPES } from "../src/store/audit.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";

let database: FreshDatabase;
let db: Kysely<GovernanceDatabase>;
let handlers: AuditHandlers;
beforeAll(async () => {
  database = await freshDatabase("governance");
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  handlers = new AuditHandlers(db);
});
afterAll(async () => {
  await database?.drop();
});

function as(tenantId: string, userId = "user-1"): HandlerContext {
  const principal = buildPrincipal({ kind: "user", tenantId, userId, roles: ["admin"] });
  const contextValues = createContextValues().set(callContextKey, { principal, requestId: "req-1", token: "t" });
  const method = GovernanceService.method.listAuditEntries;
  return createHandlerContext({ service: GovernanceService, method, protocolName: "connect", requestMethod: "POST", url: "/", contextValues });
}

async function fieldOfRejection(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return errorInfoOf(err as ConnectError)?.field;
}

const append = (tenant: string, init: Parameters<typeof create<typeof AppendAuditRequestSchema>>[1], user?: string) =>
  handlers.appendAudit(create(AppendAuditRequestSchema, init), as(tenant, user));

describe(`audit handlers (${testBackendFromEnv()})`, () => {
  it("the store's event types are the proto enum's REST names", () => {
    expect([...PROTO_AUDIT_EVENT_NAMES].sort()).toEqual([...AUDIT_EVENT_TYPES].sort());
  });

  it("AppendAudit records the caller as actor and the tenant from the context", async () => {
    const first = await append("h-a", { eventType: AuditEventType.CONFIG_CHANGE, workspaceId: "ws-1", eventData: { action: "budget_set" } }, "service:runtime");
    expect(first).toMatchObject({ seq: 1n });
    expect(first.eventHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const second = await append("h-a", { eventType: AuditEventType.BUDGET_WARNING, traceId: "tr-1" });
    expect(second.seq).toBe(2n);
    const listed = await handlers.listAuditEntries(create(ListAuditEntriesRequestSchema, {}), as("h-a"));
    expect(listed.entries.map((e) => e.seq)).toEqual([2n, 1n]);
    expect(listed.entries[1]).toMatchObject({
      eventType: AuditEventType.CONFIG_CHANGE,
      workspaceId: "ws-1",
      userId: "service:runtime",
      eventData: { action: "budget_set" },
      prevEventHash: "",
      eventHash: first.eventHash,
    });
    expect(listed.entries[0]).toMatchObject({ prevEventHash: first.eventHash, eventHash: second.eventHash, traceId: "tr-1" });
  });

  it("AppendAudit with an idempotency key appends once", async () => {
    const init = { eventType: AuditEventType.BUDGET_EXCEEDED, idempotencyKey: "exec-9:budget_exceeded" };
    const a = await append("h-idem", init);
    const b = await append("h-idem", init);
    expect(b).toEqual(a);
  });

  it("AppendAudit refuses an unspecified event type", async () => {
    expect(await fieldOfRejection(append("h-bad", { eventType: AuditEventType.UNSPECIFIED }))).toBe("event_type");
    expect(await fieldOfRejection(append("h-bad", { eventType: 999 as AuditEventType }))).toBe("event_type");
  });

  it("pages with next_cursor until has_more is false, newest first", async () => {
    for (let i = 0; i < 7; i++) await append("h-page", { eventType: AuditEventType.TOOL_CALL_SUCCEEDED, eventData: { i } });
    const seen: bigint[] = [];
    let cursor = "";
    for (let pages = 0; pages < 10; pages++) {
      const page = await handlers.listAuditEntries(create(ListAuditEntriesRequestSchema, { limit: 3, cursor }), as("h-page"));
      expect(page.total).toBe(7);
      seen.push(...page.entries.map((e) => e.seq));
      if (!page.hasMore) {
        expect(page.nextCursor).toBe("");
        break;
      }
      cursor = page.nextCursor;
    }
    expect(seen).toEqual([7n, 6n, 5n, 4n, 3n, 2n, 1n]);
  });

  it("filters by event type, workspace, trace, user and time", async () => {
    await append("h-filter", { eventType: AuditEventType.AUTH_FAILURE, workspaceId: "w1", traceId: "t1" }, "alice");
    await append("h-filter", { eventType: AuditEventType.AUTH_SUCCESS, workspaceId: "w2", traceId: "t2" }, "bob");
    const list = (init: Parameters<typeof create<typeof ListAuditEntriesRequestSchema>>[1]) =>
      handlers.listAuditEntries(create(ListAuditEntriesRequestSchema, init), as("h-filter")).then((r) => r.entries.map((e) => e.seq));
    expect(await list({ eventType: AuditEventType.AUTH_SUCCESS })).toEqual([2n]);
    expect(await list({ workspaceId: "w1" })).toEqual([1n]);
    expect(await list({ traceId: "t2" })).toEqual([2n]);
    expect(await list({ userId: "alice" })).toEqual([1n]);
    expect(await list({ startTime: timestampFromDate(new Date(Date.now() + 60_000)) })).toEqual([]);
    expect(await list({ endTime: timestampFromDate(new Date(Date.now() + 60_000)) })).toEqual([2n, 1n]);
  });

  it.each([
    [{ cursor: "not a cursor" }, "cursor"],
    [{ cursor: Buffer.from("v1:-4").toString("base64url") }, "cursor"],
    [{ cursor: Buffer.from("v2:4").toString("base64url") }, "cursor"],
    [{ startTime: timestampFromDate(new Date(2026, 1, 2)), endTime: timestampFromDate(new Date(2026, 1, 1)) }, "end_time"],
  ])("GET /audit refuses bad input naming the field: %#", async (init, field) => {
    expect(await fieldOfRejection(handlers.listAuditEntries(create(ListAuditEntriesRequestSchema, init), as("h-a")))).toBe(field);
  });

  it("stats count per type and refuse an empty window", async () => {
    const stats = await handlers.getAuditStats(create(GetAuditStatsRequestSchema, {}), as("h-filter"));
    expect(stats.stats).toMatchObject({ totalEntries: 2n, entriesByType: { auth_failure: 1n, auth_success: 1n } });
    expect(stats.stats?.oldestEntryAt).toBeDefined();
    const now = timestampFromDate(new Date());
    expect(await fieldOfRejection(handlers.getAuditStats(create(GetAuditStatsRequestSchema, { startTime: now, endTime: now }), as("h-a")))).toBe("end_time");
  });

  it("verify reports ok with the head, and refuses a from_seq beyond it", async () => {
    const result = await handlers.verifyAuditChain(create(VerifyAuditChainRequestSchema, {}), as("h-page"));
    expect(result.verification).toMatchObject({ ok: true, firstBrokenSeq: 0n, failures: [], checkedCount: 7n, headSeq: 7n });
    const partial = await handlers.verifyAuditChain(create(VerifyAuditChainRequestSchema, { fromSeq: 5n }), as("h-page"));
    expect(partial.verification).toMatchObject({ ok: true, checkedCount: 3n });
    expect(await fieldOfRejection(handlers.verifyAuditChain(create(VerifyAuditChainRequestSchema, { fromSeq: 8n }), as("h-page")))).toBe("from_seq");
  });

  it("export pages the chain oldest first with its verification", async () => {
    const first = await handlers.exportAuditChain(create(ExportAuditChainRequestSchema, { limit: 4 }), as("h-page"));
    expect(first.verification).toMatchObject({ ok: true, headSeq: 7n });
    expect(first.chain.map((e) => e.seq)).toEqual([1n, 2n, 3n, 4n]);
    expect(first.hasMore).toBe(true);
    const rest = await handlers.exportAuditChain(create(ExportAuditChainRequestSchema, { limit: 4, cursor: first.nextCursor }), as("h-page"));
    expect(rest.chain.map((e) => e.seq)).toEqual([5n, 6n, 7n]);
    expect(rest).toMatchObject({ hasMore: false, nextCursor: "" });
    expect(rest.chain[0]!.prevEventHash).toBe(first.chain[3]!.eventHash);
    expect(await fieldOfRejection(handlers.exportAuditChain(create(ExportAuditChainRequestSchema, { cursor: "%%" }), as("h-page")))).toBe("cursor");
  });

  it("never shows another tenant's entries", async () => {
    const other = as("h-stranger");
    expect((await handlers.listAuditEntries(create(ListAuditEntriesRequestSchema, {}), other)).entries).toEqual([]);
    expect((await handlers.getAuditStats(create(GetAuditStatsRequestSchema, {}), other)).stats?.totalEntries).toBe(0n);
    expect((await handlers.verifyAuditChain(create(VerifyAuditChainRequestSchema, {}), other)).verification).toMatchObject({ ok: true, headSeq: 0n, checkedCount: 0n });
    expect((await handlers.exportAuditChain(create(ExportAuditChainRequestSchema, {}), other)).chain).toEqual([]);
    // A cursor taken from another tenant's listing only positions within the caller's own chain.
    const page = await handlers.listAuditEntries(create(ListAuditEntriesRequestSchema, { limit: 1 }), as("h-page"));
    expect((await handlers.listAuditEntries(create(ListAuditEntriesRequestSchema, { cursor: page.nextCursor }), other)).entries).toEqual([]);
  });
});
