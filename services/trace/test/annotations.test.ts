import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { errorInfoOf } from "@clasper/core";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import type { TraceDatabase } from "../src/store/schema.js";
import { hex, seedExecution, traceClient, traceDb, type TraceClient } from "./query-fixtures.js";

let database: FreshDatabase;
let db: Kysely<TraceDatabase>;
let operator: TraceClient;
let traceId: string;
const tenant = "t-notes";
beforeAll(async () => {
  database = await freshDatabase("trace");
  db = traceDb(database);
  operator = traceClient(database, { tenantId: tenant, roles: ["operator"], userId: "alice" });
  traceId = await seedExecution(db, { tenantId: tenant });
});
afterAll(async () => {
  await database?.drop();
});

async function failure(promise: Promise<unknown>): Promise<{ code: Code; field: string | undefined }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return { code: (err as ConnectError).code, field: errorInfoOf(err as ConnectError)?.field };
}

describe(`annotations (${testBackendFromEnv()})`, () => {
  it("appends annotations with the author from the token and lists them oldest first", async () => {
    const first = await operator.annotateTrace({ traceId, key: "reviewed", value: "looks fine", });
    expect(first.annotation).toMatchObject({ traceId, key: "reviewed", value: "looks fine", createdBy: "alice" });
    expect(first.annotation!.annotationId).not.toBe("");
    expect(Math.abs(timestampDate(first.annotation!.createdAt!).getTime() - Date.now())).toBeLessThan(60_000);
    await operator.annotateTrace({ traceId, key: "baseline", value: "v1" });
    await traceClient(database, { tenantId: tenant, roles: ["admin"], userId: "bob" }).annotateTrace({ traceId, key: "baseline", value: "v2" });
    const { annotations } = await operator.listTraceAnnotations({ traceId });
    expect(annotations.map((a) => [a.key, a.value, a.createdBy])).toEqual([
      ["reviewed", "looks fine", "alice"],
      ["baseline", "v1", "alice"],
      ["baseline", "v2", "bob"],
    ]);
    // The list view carries the first value per key.
    const { traces } = await operator.listTraces({});
    expect(traces.find((t) => t.traceId === traceId)!.annotations).toEqual({ reviewed: "looks fine", baseline: "v1" });
  });

  it("accepts an empty value and the maximum sizes, and rejects oversize or missing keys", async () => {
    await operator.annotateTrace({ traceId, key: "k".repeat(128), value: "" });
    await operator.annotateTrace({ traceId, key: "note", value: "v".repeat(4096) });
    expect(await failure(operator.annotateTrace({ traceId, key: "", value: "x" }))).toEqual({ code: Code.InvalidArgument, field: "key" });
    expect(await failure(operator.annotateTrace({ traceId, key: "k".repeat(129), value: "x" }))).toEqual({ code: Code.InvalidArgument, field: "key" });
    expect(await failure(operator.annotateTrace({ traceId, key: "note", value: "v".repeat(4097) }))).toEqual({ code: Code.InvalidArgument, field: "value" });
    expect(await failure(operator.annotateTrace({ traceId: "T", key: "note", value: "x" }))).toEqual({ code: Code.InvalidArgument, field: "trace_id" });
  });

  it("answers NotFound for unknown and other-tenant traces without writing anything", async () => {
    const other = traceClient(database, { tenantId: "t-notes-other", roles: ["admin"] });
    expect(await failure(other.annotateTrace({ traceId, key: "incident", value: "x" }))).toEqual({ code: Code.NotFound, field: "trace_id" });
    expect(await failure(other.listTraceAnnotations({ traceId }))).toEqual({ code: Code.NotFound, field: "trace_id" });
    expect(await failure(operator.annotateTrace({ traceId: hex(16), key: "incident", value: "x" }))).toEqual({ code: Code.NotFound, field: "trace_id" });
    expect(await failure(operator.listTraceAnnotations({ traceId: hex(16) }))).toEqual({ code: Code.NotFound, field: "trace_id" });
    const rows = await db.selectFrom("trace_annotations").select("key").where("key", "=", "incident").execute();
    expect(rows).toEqual([]);
  });

  it("requires trace:annotate to write and trace:view to read", async () => {
    const viewer = traceClient(database, { tenantId: tenant, roles: ["viewer"] });
    expect((await failure(viewer.annotateTrace({ traceId, key: "note", value: "x" }))).code).toBe(Code.PermissionDenied);
    expect((await viewer.listTraceAnnotations({ traceId })).annotations.length).toBeGreaterThan(0);
  });
});
