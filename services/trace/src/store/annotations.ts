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
