import type { ConnectRouter } from "@connectrpc/connect";
import { trace } from "@opentelemetry/api";
import type { ServiceDeps } from "@clasper/service-kit";
import { createAgentTokenMinter, type AgentTokenMinter } from "@clasper/auth";
import { runtimeConfig, type RuntimeConfig } from "./config.js";
import { createGovernance } from "./governance.js";
import { AgentHandlers } from "./handlers/agents.js";
import { CompactHandlers } from "./handlers/compact.js";
import { LlmTaskHandlers } from "./handlers/llm-task.js";
import { UsageHandlers } from "./handlers/usage.js";
import { createLlmCaller } from "./llm/call.js";
import { routes } from "./routes.js";
import type { RuntimeContext } from "./runtime-context.js";

export const RUNTIME_SCHEMA: string | undefined = undefined;

/** One minter per process, so a subject's token is reused across executions for part of its lifetime. */
function agentTokenMinter(config: RuntimeConfig): AgentTokenMinter {
  // Unset, executions stop before any Control Plane call (backendSettings names the variable).
  if (!config.AGENT_JWT_SECRET) return () => Promise.reject(new Error("AGENT_JWT_SECRET is not set"));
  return createAgentTokenMinter({ secret: config.AGENT_JWT_SECRET, ttlSeconds: config.CLASPER_AGENT_TOKEN_TTL_SECONDS });
}

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
    agentTokens: agentTokenMinter(config),
  };
  return routes(new AgentHandlers(rt), new LlmTaskHandlers(rt), new CompactHandlers(rt), new UsageHandlers(deps.peers));
}
