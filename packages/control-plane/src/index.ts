export {
  AGENT_TOKEN_HEADER,
  createControlPlaneClient,
  DEFAULT_TIMEOUT_MS,
  IDEMPOTENCY_KEY_HEADER,
  TRACE_ID_HEADER,
  type CallOptions,
  type ControlPlaneClient,
  type ControlPlaneClientOptions,
  type CreateOptions,
  type ListTasksOptions,
} from "./client.js";
export { ControlPlaneError, isRetryableStatus, parseRetryAfter, type ControlPlaneErrorCode } from "./errors.js";
export { idempotencyKey } from "./idempotency.js";
export { withRetry, type RetryOptions } from "./retry.js";
export * from "./types.js";
export {
  runConformance,
  toJUnitXml,
  type ConformanceOptions,
  type ConformanceReport,
  type ConformanceResult,
} from "./conformance.js";
export {
  createMissionControlLite,
  LITE_VERSION,
  type LiteFault,
  type MissionControlLite,
  type MissionControlLiteOptions,
} from "./lite/server.js";
export { LiteHttpError } from "./lite/http.js";
export {
  LiteState,
  type Customer,
  type Owner,
  type RequestRecord,
  type StoredDocument,
  type StoredMessage,
  type StoredTask,
  type ToolCallRecord,
} from "./lite/state.js";
export { echoTool, lookupCustomerTool, SAMPLE_TOOLS, slowTool, type LiteTool, type ToolContext } from "./lite/tools.js";
