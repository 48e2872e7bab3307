import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { TraceAnnotationsTable, TraceDatabase } from "./schema.js";
import type { TraceScope } from "./traces.js";

type Executor = Kysely<TraceDatabase> | Transaction<TraceDatabase>;

export type AnnotationRow = Selectable<TraceAnnotationsTable>;

/**
 * Appends an annotation to a trace in scope, in one statement (insert … select from traces), so
 * a trace of another tenant or workspace, or one deleted meanwhile, yields undefined rather
 * than a row or a foreign-key error.
 */
export async function insertAnnotation(
  db: Executor,
  scope: TraceScope,
  annotation: { annotation_id: string; trace_id: string; key: string; value: string; created_by: string },
): Promise<AnnotationRow | undefined> {
  let source = db
    .selectFrom("traces")
    .select([
      "tenant_id",
      sql<string>`${annotation.annotation_id}::text`.as("annotation_id"),
      "trace_id",
      sql<string>`${annotation.key}::text`.as("key"),
      sql<string>`${annotation.value}::text`.as("value"),
      sql<string>`${annotation.created_by}::text`.as("created_by"),
    ])
    .where("tenant_id", "=", scope.tenantId)
    .where("trace_id", "=", annotation.trace_id);
  if (scope.workspaceId !== undefined) source = source.where("workspace_id", "=", scope.workspaceId);
  return db
    .insertInto("trace_annotations")
    .columns(["tenant_id", "annotation_id", "trace_id", "key", "value", "created_by"])
    .expression(source)
    .returningAll()
    .executeTakeFirst();
}

/** A trace's annotations, oldest first (ids are UUIDv7, so they break ties in creation order). */
export async function listAnnotations(db: Executor, tenantId: string, traceId: string): Promise<AnnotationRow[]> {
  return db
    .selectFrom("trace_annotations")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("trace_id", "=", traceId)
    .orderBy("created_at")
    .orderBy("annotation_id")
    .execute();
}

/** For a page of traces: trace id → (key → the oldest value of that key). */
export async function firstAnnotationValues(db: Executor, tenantId: string, traceIds: readonly string[]): Promise<Map<string, Record<string, string>>> {
  const result = new Map<string, Record<string, string>>();
  if (traceIds.length === 0) return result;
  const rows = await db
    .selectFrom("trace_annotations")
    .select(["trace_id", "key", "value"])
    .distinctOn(["trace_id", "key"])
    .where("tenant_id", "=", tenantId)
    .where("trace_id", "in", traceIds)
    .orderBy("trace_id")
    .orderBy("key")
    .orderBy("created_at")
    .orderBy("annotation_id")
    .execute();
  for (const row of rows) {
    const map = result.get(row.trace_id) ?? {};
    map[row.key] = row.value;
    result.set(row.trace_id, map);
  }
  return result;
}
