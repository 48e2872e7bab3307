import { sql, type Kysely } from "kysely";

// Frozen in time: later changes get a new migration, never an edit here.
//
// A span's attributes and events move to `payload`, bytes the service encodes (a protobuf
// clasper.trace.v1.Span holding only attributes and events; services/trace/src/store/span-payload.ts)
// and decodes, instead of jsonb that PostgreSQL parses on every insert: lexing and unescaping the
// payload attributes (prompts, completions, tool arguments, themselves JSON strings full of escaped
// quotes) was about a third of the database's CPU on span ingest, and nothing reads them in SQL
// (docs/PERFORMANCE.md, "Span ingest").
//
// New rows fill `payload` and leave the jsonb columns null; rows written before keep their jsonb,
// and the reader takes whichever is present (store/steps.ts). Adding a column and dropping NOT NULL
// change only the catalog: the table is not rewritten, and a replica still running the previous
// version keeps writing and reading the jsonb columns during a rolling upgrade. `payload` gets the
// compression the jsonb columns have (lz4 where 20261126000000 could set it).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table spans
    add column payload bytea,
    alter column attributes drop not null,
    alter column events drop not null,
    add constraint spans_payload_present check (payload is not null or (attributes is not null and events is not null)) not valid`.execute(db);
  const { rows } = await sql<{ lz4: boolean }>`
    select attcompression = 'l' as lz4 from pg_attribute where attrelid = 'spans'::regclass and attname = 'attributes'`.execute(db);
  if (rows[0]?.lz4) await sql`alter table spans alter column payload set compression lz4`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // Rows written since hold their attributes and events only in `payload`, which SQL cannot
  // decode: going back would lose them, so it is refused while there are any.
  const { rows } = await sql<{ n: string }>`select count(*) as n from spans where attributes is null`.execute(db);
  if (Number(rows[0]?.n) > 0) throw new Error("spans written since 20261127000000_span_payload hold their payload only in `payload`; delete them before migrating down");
  await sql`alter table spans
    drop constraint spans_payload_present,
    alter column events set not null,
    alter column attributes set not null,
    drop column payload`.execute(db);
}
