import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf } from "@clasper/auth";
import { notFound, uuidv7 } from "@clasper/core";
import {
  AnnotateTraceResponseSchema,
  ListTraceAnnotationsResponseSchema,
  TraceAnnotationSchema,
  type AnnotateTraceRequest,
  type AnnotateTraceResponse,
  type ListTraceAnnotationsRequest,
  type ListTraceAnnotationsResponse,
  type TraceAnnotation,
} from "@clasper/proto";
import { insertAnnotation, listAnnotations, type AnnotationRow } from "../store/annotations.js";
import type { TraceDatabase } from "../store/schema.js";
import { findTrace } from "../store/traces.js";
import { scopeOf } from "./traces.js";

function toProto(row: AnnotationRow): TraceAnnotation {
  return create(TraceAnnotationSchema, {
    annotationId: row.annotation_id,
    traceId: row.trace_id,
    key: row.key,
    value: row.value,
    createdAt: timestampFromDate(row.created_at),
    createdBy: row.created_by ?? "",
  });
}

/** POST /traces/{id}/annotate and GET /traces/{id}/annotations: append-only notes on a trace. */
export class AnnotationHandlers {
  constructor(private readonly db: Kysely<TraceDatabase>) {}

  async annotateTrace(req: AnnotateTraceRequest, ctx: HandlerContext): Promise<AnnotateTraceResponse> {
    const row = await insertAnnotation(this.db, scopeOf(ctx), {
      annotation_id: uuidv7(),
      trace_id: req.traceId,
      key: req.key,
      value: req.value,
      created_by: principalOf(ctx).userId,
    });
    if (!row) throw notFound(`trace ${req.traceId}`, "trace_id");
    return create(AnnotateTraceResponseSchema, { annotation: toProto(row) });
  }

  async listTraceAnnotations(req: ListTraceAnnotationsRequest, ctx: HandlerContext): Promise<ListTraceAnnotationsResponse> {
    const scope = scopeOf(ctx);
    // Unlike the original (empty list), an unknown trace is NotFound, so a typo is not mistaken for "no notes".
    if (!(await findTrace(this.db, scope, req.traceId))) throw notFound(`trace ${req.traceId}`, "trace_id");
    const rows = await listAnnotations(this.db, scope.tenantId, req.traceId);
    return create(ListTraceAnnotationsResponseSchema, { traceId: req.traceId, annotations: rows.map(toProto) });
  }
}
