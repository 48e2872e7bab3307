import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// Span attributes and events become JSON text that the service writes and parses, instead of
// jsonb that PostgreSQL parses on every insert: lexing and unescaping the payload attributes
// (prompts, completions, tool arguments, often themselves JSON strings full of escaped quotes)
// was about a third of the database's CPU on span ingest, and nothing reads them in SQL; the query
// side parses them in Node (docs/PERFORMANCE.md, "Span ingest").
//
// New rows fill `attributes_json` and `events_json` and leave the jsonb columns null; rows written
// before keep their jsonb, and readers take whichever is present (store/steps.ts). Adding columns
// and dropping NOT NULL change only the catalog, so the migration does not rewrite the table and a
// replica still running the previous version keeps writing and reading the jsonb columns. The new
// columns get the compression the jsonb ones have (lz4 where 20261126000000 could set it).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table spans
    add column attributes_json text,
    add column events_json text,
    alter column attributes drop not null,
    alter column events drop not null,
    add constraint spans_attributes_present check (attributes_json is not null or attributes is not null) not valid,
    add constraint spans_events_present check (events_json is not null or events is not null) not valid`.execute(db);
  const { rows } = await sql<{ lz4: boolean }>`
    select attcompression = 'l' as lz4 from pg_attribute where attrelid = 'spans'::regclass and attname = 'attributes'`.execute(db);
  if (!rows[0]?.lz4) return;
  await sql`alter table spans alter column attributes_json set compression lz4, alter column events_json set compression lz4`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // Rows written since keep their payload only in the text columns; bring it back first.
  await sql`update spans set attributes = attributes_json::jsonb, events = events_json::jsonb where attributes is null or events is null`.execute(db);
  await sql`alter table spans
    drop constraint spans_events_present,
    drop constraint spans_attributes_present,
    alter column events set not null,
    alter column attributes set not null,
    drop column events_json,
    drop column attributes_json`.execute(db);
}
