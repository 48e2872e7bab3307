export { startStubProvider } from "./stub-provider/server.js";
export { DEFAULT_REPLY } from "./stub-provider/turn.js";
export type {
  RecordedRequest,
  Responder,
  ScriptedFault,
  ScriptedToolCall,
  ScriptedTurn,
  ScriptedUsage,
  StubProtocol,
  StubProvider,
  StubProviderOptions,
} from "./stub-provider/types.js";
export { startTestIssuer } from "./test-issuer.js";
export type { SignOptions, TestIssuer, TestIssuerOptions } from "./test-issuer.js";
