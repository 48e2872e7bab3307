import { sql, type Kysely } from "kysely";
import { createDatabase, type Database } from "@clasper/db";
import { testDatabaseUrl, type FreshDatabase } from "@clasper/db/testing";
import { appendAudit } from "../src/store/audit.js";
import type { GovernanceDatabase } from "../src/store/schema.js";

/**
 * The superuser URL for a fresh test database: TEST_ADMIN_DATABASE_URL when set, else
 * TEST_DATABASE_URL with the credentials of `clasper_admin` (scripts/ci-postgres.sh creates it);
 * either way pointed at `database`.
 */
export function adminUrlFor(database: FreshDatabase): string {
  const override = process.env["TEST_ADMIN_DATABASE_URL"];
  const url = new URL(override || testDatabaseUrl());
  if (!override) {
    url.username = "clasper_admin";
    url.password = "clasper_admin";
  }
  url.pathname = `/${database.name}`;
  return url.toString();
}

/**
 * A superuser handle on `database`. PGlite has one session and it is a superuser already, so the
 * application's own handle serves; on PostgreSQL a second pool logs in as the superuser.
 */
export function superuser(database: FreshDatabase): { kysely: Kysely<any>; close(): Promise<void> } {
  if (database.kind === "pglite") return { kysely: database.kysely, close: async () => {} };
  const admin: Database = createDatabase({ url: adminUrlFor(database), poolMax: 2 });
  return { kysely: admin.kysely, close: () => admin.close() };
}

/** Appends `count` varied events to `tenantId`'s chain, one after another. */
export async function appendMany(db: Kysely<GovernanceDatabase>, tenantId: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    await appendAudit(db, tenantId, {
      eventType: i % 2 === 0 ? "budget_warning" : "config_change",
      ...(i % 3 === 0 ? { workspaceId: `ws-${i % 2}` } : {}),
      traceId: `trace-${i}`,
      actor: "user-1",
      data: { i, note: `event ${i}`, nested: { ok: i % 2 === 0, list: [i, "x", null] } },
    });
  }
}

/** The PostgreSQL error code of a rejected query (pg and PGlite both set `code`). */
export function sqlState(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

export async function withTriggersDisabled(admin: Kysely<any>, fn: (trx: Kysely<any>) => Promise<void>): Promise<void> {
  await admin.transaction().execute(async (trx) => {
    // What an attacker with superuser rights does to skip the chain trigger: the forged row
    // then neither has to continue the head nor advances it.
    await sql`set local session_replication_role = replica`.execute(trx);
    await fn(trx);
  });
}
