import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { createDatabase } from "../src/index.js";
import { testDatabaseUrl } from "../src/testing.js";

describe("createDatabase", () => {
  it("rejects a url that is not PostgreSQL", () => {
    expect(() => createDatabase({ url: "mysql://localhost/x" })).toThrow(/postgres:\/\//);
  });

  it("persists a PGlite data directory across handles", async () => {
    const dir = await mkdtemp(join(tmpdir(), "clasper-db-test-"));
    try {
      const first = createDatabase({ dataDir: dir });
      expect(first.kind).toBe("pglite");
      await sql`create table kept (v int4)`.execute(first.kysely);
      await sql`insert into kept values (1)`.execute(first.kysely);
      await first.close();
      await first.close(); // idempotent

      const second = createDatabase({ dataDir: dir });
      const { rows } = await sql`select v from kept`.execute(second.kysely);
      expect(rows).toEqual([{ v: 1 }]);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.runIf(inject("backends").includes("postgres"))("applies statementTimeoutMs on PostgreSQL", async () => {
    const db = createDatabase({ url: testDatabaseUrl(), statementTimeoutMs: 100, poolMax: 1 });
    try {
      expect(db.kind).toBe("postgres");
      await db.ping();
      await expect(sql`select pg_sleep(2)`.execute(db.kysely)).rejects.toMatchObject({ code: "57014" });
    } finally {
      await db.close();
    }
  });

  it("rejects ping when PostgreSQL is unreachable", async () => {
    const db = createDatabase({ url: "postgres://nobody:x@127.0.0.1:1/none" });
    await expect(db.ping()).rejects.toThrow();
    await db.close();
  });
});
