import type { ConnectRouter } from "@connectrpc/connect";
import { TraceService } from "@clasper/proto";
import { implement } from "@clasper/service-kit";
import type { AnnotationHandlers } from "./handlers/annotations.js";
import type { IngestHandlers } from "./handlers/ingest.js";
import type { RetentionHandlers } from "./handlers/retention.js";
import type { TraceQueryHandlers } from "./handlers/traces.js";

/** router.service(...) for the trace service, nothing else. RPCs without a handler answer Unimplemented. */
export function routes(handlers: {
  retention: RetentionHandlers;
  traces: TraceQueryHandlers;
  annotations: AnnotationHandlers;
  ingest: IngestHandlers;
}): (router: ConnectRouter) => void {
  return (router) => {
    router.service(TraceService, implement(TraceService, handlers.retention, handlers.traces, handlers.annotations, handlers.ingest));
  };
}
