import type { ConnectRouter } from "@connectrpc/connect";
import { GovernanceService } from "@clasper/proto";
import { implement } from "@clasper/service-kit";

/** router.service(...) for the governance service, nothing else. RPCs without a handler answer Unimplemented. */
export function routes(...handlers: object[]): (router: ConnectRouter) => void {
  return (router) => {
    router.service(GovernanceService, implement(GovernanceService, ...handlers));
  };
}
