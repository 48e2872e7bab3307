import type { ConnectRouter } from "@connectrpc/connect";
import type { ServiceDeps } from "@clasper/service-kit";
import { AnnotationHandlers } from "./handlers/annotations.js";
import { createIngestHandlers } from "./handlers/ingest.js";
import { RetentionHandlers } from "./handlers/retention.js";
import { TraceQueryHandlers } from "./handlers/traces.js";
import { routes } from "./routes.js";
import type { TraceDatabase } from "./store/schema.js";

export const TRACE_SCHEMA = "trace";

/** Wires the trace service's stores and handlers; never listens. */
export function build(deps: ServiceDeps): (router: ConnectRouter) => void {
  if (!deps.db) throw new Error("the trace service needs a database");
  const db = deps.db.forSchema<TraceDatabase>(TRACE_SCHEMA);
  return routes({ retention: new RetentionHandlers(db), traces: new TraceQueryHandlers(db), annotations: new AnnotationHandlers(db), ingest: createIngestHandlers(db, deps.db.kind, deps) });
}
