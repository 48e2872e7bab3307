import type { ConnectRouter } from "@connectrpc/connect";
import type { ServiceDeps } from "@clasper/service-kit";
import { routes } from "./routes.js";

export const GOVERNANCE_SCHEMA: string | undefined = "governance";

/** Wires the governance service's stores and handlers; never listens. */
export function build(_deps: ServiceDeps): (router: ConnectRouter) => void {
  return routes();
}
