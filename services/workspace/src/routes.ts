import type { ConnectRouter } from "@connectrpc/connect";
import { WorkspaceService } from "@clasper/proto";
import { implement } from "@clasper/service-kit";

/** router.service(...) for the workspace service, nothing else. RPCs without a handler answer Unimplemented. */
export function routes(...handlers: object[]): (router: ConnectRouter) => void {
  return (router) => {
    router.service(WorkspaceService, implement(WorkspaceService, ...handlers));
  };
}
