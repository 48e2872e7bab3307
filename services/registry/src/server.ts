import type { ConnectRouter } from "@connectrpc/connect";
import type { ServiceDeps } from "@clasper/service-kit";
import { routes } from "./routes.js";

export const REGISTRY_SCHEMA: string | undefined = "registry";

/** Wires the registry service's stores and handlers; never listens. */
export function build(_deps: ServiceDeps): (router: ConnectRouter) => void {
  return routes();
}
