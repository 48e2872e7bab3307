import type { ConnectRouter } from "@connectrpc/connect";
import type { ServiceDeps } from "@clasper/service-kit";
import { workspaceConfig } from "./config.js";
import { WorkspaceResolutionHandlers } from "./handlers/resolution.js";
import { routes } from "./routes.js";
import { WorkspaceResolver } from "./workspace/resolver.js";

export const WORKSPACE_SCHEMA: string | undefined = "workspace";

/** Wires the workspace service's stores and handlers; never listens. */
export function build(deps: ServiceDeps): (router: ConnectRouter) => void {
  const config = workspaceConfig(deps.env);
  // Skills are gated on the deployment's environment (the same one the service was given).
  const resolver = new WorkspaceResolver(config, { env: deps.env, platform: process.platform });
  return routes(new WorkspaceResolutionHandlers(resolver, config.maxCharsPerFile));
}
