import type { ConnectRouter } from "@connectrpc/connect";
import type { ServiceDeps } from "@clasper/service-kit";
import { routes } from "./routes.js";
import type { GovernanceDatabase } from "./store/schema.js";

export const GOVERNANCE_SCHEMA = "governance";

/** Wires the governance service's stores and handlers; never listens. */
export function build(deps: ServiceDeps): (router: ConnectRouter) => void {
  if (!deps.db) throw new Error("the governance service needs a database");
  const db = deps.db.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  void db;
  // Each area adds its handler instance to this list.
  const handlers: object[] = [];
  return routes(...handlers);
}
