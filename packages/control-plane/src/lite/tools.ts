import { setTimeout as sleep } from "node:timers/promises";
import { LiteHttpError } from "./http.js";
import type { LiteState } from "./state.js";

export interface ToolContext {
  /** The verified caller; a tool answers for this user of this tenant only. */
  tenantId: string;
  userId: string;
  agentRole: string;
  traceId: string | null;
  state: LiteState;
  /** Aborted when the server closes, so long-running tools never hold `close()` up. */
  signal: AbortSignal;
}

/** A tool `GET /api/tools` lists and `POST /api/tools/{name}` runs. Throw LiteHttpError for refusals. */
export interface LiteTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments; the server validates against it before `run`. */
  parameters: Record<string, unknown>;
  run(args: Record<string, unknown>, ctx: ToolContext): unknown;
}

export const SLOW_TOOL_MAX_MS = 60_000;

export const echoTool: LiteTool = {
  name: "echo",
  description: "Returns the message it is given.",
  parameters: {
    type: "object",
    properties: { message: { type: "string", description: "Text to echo back." } },
    required: ["message"],
    additionalProperties: false,
  },
  run: (args) => ({ message: args["message"] }),
};

export const lookupCustomerTool: LiteTool = {
  name: "lookup_customer",
  description: "Looks up one of the current user's customers by id.",
  parameters: {
    type: "object",
    properties: { customer_id: { type: "string", minLength: 1, description: "The customer's id." } },
    required: ["customer_id"],
    additionalProperties: false,
  },
  run(args, ctx) {
    // Scoped by the token's user: another user's customer id answers exactly like an unknown one.
    const customer = ctx.state.customersOf(ctx).find((c) => c.id === args["customer_id"]);
    if (!customer) throw new LiteHttpError(404, "not_found", "customer not found");
    return { customer };
  },
};

export const slowTool: LiteTool = {
  name: "slow",
  description: "Waits the given number of milliseconds, then answers (for timeout tests).",
  parameters: {
    type: "object",
    properties: { ms: { type: "integer", minimum: 0, maximum: SLOW_TOOL_MAX_MS } },
    required: ["ms"],
    additionalProperties: false,
  },
  async run(args, ctx) {
    const ms = args["ms"] as number;
    await sleep(ms, undefined, { signal: ctx.signal });
    return { slept_ms: ms };
  },
};

export const SAMPLE_TOOLS: readonly LiteTool[] = [echoTool, lookupCustomerTool, slowTool];
