import type { ConnectRouter } from "@connectrpc/connect";
import { TraceService } from "@clasper/proto";
import { implement } from "@clasper/service-kit";
import type { RetentionHandlers } from "./handlers/retention.js";

/** router.service(...) for the trace service, nothing else. RPCs without a handler answer Unimplemented. */
export function routes(handlers: { retention: RetentionHandlers }): (router: ConnectRouter) => void {
  return (router) => {
    router.service(TraceService, implement(TraceService, handlers.retention));
  };
}
