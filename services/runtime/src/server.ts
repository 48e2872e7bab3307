import type { ConnectRouter } from "@connectrpc/connect";
import { trace } from "@opentelemetry/api";
import type { ServiceDeps } from "@clasper/service-kit";
import { runtimeConfig } from "./config.js";
import { createGovernance } from "./governance.js";
import { AgentHandlers } from "./handlers/agents.js";
import { CompactHandlers } from "./handlers/compact.js";
import { LlmTaskHandlers } from "./handlers/llm-task.js";
import { UsageHandlers } from "./handlers/usage.js";
import { createLlmCaller } from "./llm/call.js";
import { routes } from "./routes.js";
import type { RuntimeContext } from "./runtime-context.js";

export const RUNTIME_SCHEMA: string | undefined = undefined;

/** Wires the runtime service's stores and handlers; never listens. */
export function build(deps: ServiceDeps): (router: ConnectRouter) => void {
  const config = runtimeConfig(deps.env);
  // The process's tracer, so span delivery ships execution spans to the trace service.
  const tracer = deps.telemetry?.tracer ?? trace.getTracer("clasper");
  const rt: RuntimeContext = {
    config,
    peers: deps.peers,
    tracer,
    governance: createGovernance(deps.peers, tracer, deps.logger),
    llm: createLlmCaller(config, tracer),
    logger: deps.logger,
  };
  return routes(new AgentHandlers(rt), new LlmTaskHandlers(rt), new CompactHandlers(rt), new UsageHandlers(deps.peers));
}
