import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kysely } from "kysely";
import { testBackendFromEnv, useFreshDatabase } from "@clasper/db/testing";
import { findRetentionPolicy, upsertRetentionPolicy } from "../src/store/retention.js";
import type { TraceDatabase } from "../src/store/schema.js";
import { TRACE_SCHEMA } from "../src/server.js";

let db: Kysely<TraceDatabase>;
useFreshDatabase({ beforeAll, afterAll }, "trace", (database) => {
  db = database.forSchema<TraceDatabase>(TRACE_SCHEMA);
});

describe(`retention policy store (${testBackendFromEnv()})`, () => {
  it("creates a policy from defaults plus the given fields", async () => {
    const row = await upsertRetentionPolicy(db, "t-create", { retention_days: 30 });
    expect(row).toMatchObject({ tenant_id: "t-create", retention_days: 30, sampling_strategy: "full", storage_mode: "full", sample_rate: 0.1 });
    expect(row.created_at).toBeInstanceOf(Date);
  });

  it("changes only the given fields on update and moves updated_at", async () => {
    const first = await upsertRetentionPolicy(db, "t-update", { retention_days: 10, sampling_strategy: "sampled", sample_rate: 0.5 });
    const second = await upsertRetentionPolicy(db, "t-update", { storage_mode: "minimal" });
    expect(second).toMatchObject({ retention_days: 10, sampling_strategy: "sampled", sample_rate: 0.5, storage_mode: "minimal" });
    expect(second.created_at.getTime()).toBe(first.created_at.getTime());
    expect(second.updated_at.getTime()).toBeGreaterThanOrEqual(first.updated_at.getTime());
  });

  it("scopes every read and write by tenant", async () => {
    await upsertRetentionPolicy(db, "t-a", { retention_days: 5 });
    await upsertRetentionPolicy(db, "t-b", { retention_days: 500 });
    expect((await findRetentionPolicy(db, "t-a"))?.retention_days).toBe(5);
    expect((await findRetentionPolicy(db, "t-b"))?.retention_days).toBe(500);
    expect(await findRetentionPolicy(db, "t-none")).toBeUndefined();
  });

  it("loses no field when partial updates of one tenant race", async () => {
    await upsertRetentionPolicy(db, "t-race", {});
    await Promise.all([
      upsertRetentionPolicy(db, "t-race", { retention_days: 42 }),
      upsertRetentionPolicy(db, "t-race", { sampling_strategy: "errors_only" }),
      upsertRetentionPolicy(db, "t-race", { storage_mode: "summary" }),
      upsertRetentionPolicy(db, "t-race", { sample_rate: 0.25 }),
    ]);
    expect(await findRetentionPolicy(db, "t-race")).toMatchObject({ retention_days: 42, sampling_strategy: "errors_only", storage_mode: "summary", sample_rate: 0.25 });
  });

  it("refuses out-of-range values at the database too", async () => {
    await expect(upsertRetentionPolicy(db, "t-check", { retention_days: 0 })).rejects.toThrow();
    await expect(upsertRetentionPolicy(db, "t-check", { sample_rate: 2 })).rejects.toThrow();
  });
});
