import type { ConnectRouter } from "@connectrpc/connect";
import type { ServiceDeps } from "@clasper/service-kit";
import { routes } from "./routes.js";

export const WORKSPACE_SCHEMA: string | undefined = "workspace";

/** Wires the workspace service's stores and handlers; never listens. */
export function build(_deps: ServiceDeps): (router: ConnectRouter) => void {
  return routes();
}
