import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// Span attributes (prompts, completions, tool arguments and results) are the bulk of what ingest
// writes, and a span row over ~2 KB is compressed into TOAST on insert. PostgreSQL's default,
// pglz, cost about twice the CPU of lz4 per compressed row at the same ratio on ingest's spans
// (docs/PERFORMANCE.md, "Span ingest"), and lz4 also decompresses faster when traces are read.
// lz4 exists only in servers built with it (PGlite and some distributions are not), so the
// column keeps pglz where the server does not offer lz4. Only rows written from now on use it;
// existing rows keep the method they were written with (both are read transparently).
export async function up(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ lz4: boolean }>`
    select coalesce(bool_or('lz4' = any(enumvals)), false) as lz4
    from pg_settings where name = 'default_toast_compression'`.execute(db);
  if (!rows[0]?.lz4) return;
  await sql`alter table spans alter column attributes set compression lz4, alter column events set compression lz4`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table spans alter column attributes set compression default, alter column events set compression default`.execute(db);
}
