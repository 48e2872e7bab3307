import type { Tracer } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { AgentTokenMinter } from "@clasper/auth";
import type { PeerClients } from "@clasper/service-kit";
import type { RuntimeConfig } from "./config.js";
import type { Governance } from "./governance.js";
import type { LlmCaller } from "./llm/call.js";

/** Everything a runtime handler needs, built once by server.ts. */
export interface RuntimeContext {
  readonly config: RuntimeConfig;
  readonly peers: PeerClients;
  readonly tracer: Tracer;
  readonly governance: Governance;
  readonly llm: LlmCaller;
  readonly logger: Logger;
  /** X-Agent-Token for Control Plane calls; refuses when AGENT_JWT_SECRET is not set. */
  readonly agentTokens: AgentTokenMinter;
}
