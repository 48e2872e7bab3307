export { AuthConfigError, AuthError, MIN_SECRET_BYTES, type AuthErrorCode } from "./errors.js";
export {
  authorizeProcedure,
  hasPermission,
  isRole,
  minimumRole,
  PERMISSIONS,
  permissionsForRoles,
  requirePermission,
  roleRank,
  ROLES,
  rolesWithPermission,
  type Permission,
  type ProcedureRule,
  type Role,
} from "./rbac.js";
export { procedurePermissions } from "./procedure-rules.js";
export {
  buildPrincipal,
  canAccessTenant,
  DEFAULT_WORKSPACE,
  normaliseRoles,
  tenantWide,
  workspaceDenied,
  workspaceScope,
  type Principal,
  type PrincipalInit,
} from "./principal.js";
export {
  createCallerVerifier,
  DAEMON_KEY_HEADER,
  DEFAULT_JWKS_ALGORITHMS,
  type CallerVerifier,
  type CallerVerifierOptions,
  type ClaimNames,
} from "./caller.js";
export {
  CONTEXT_HEADER,
  createContextSigner,
  createContextVerifier,
  type ContextSigner,
  type ContextVerifier,
  type InternalContext,
} from "./context.js";
export {
  callContextKey,
  currentCallContext,
  forwardContextInterceptor,
  principalOf,
  runAsService,
  serverAuthInterceptor,
  type CallContext,
  type ServerAuthOptions,
} from "./interceptors.js";
export {
  createAgentTokenMinter,
  mintAgentToken,
  verifyAgentToken,
  type AgentTokenClaims,
  type AgentTokenInit,
  type AgentTokenMinter,
  type AgentTokenMinterOptions,
  type AgentTokenSubject,
} from "./agent-token.js";
export { DEV_SECRET_FILE, ensureDevSecret, mintDevToken, type DevTokenOptions } from "./dev.js";
