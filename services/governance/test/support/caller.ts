import { createContextValues, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { buildPrincipal, callContextKey, type PrincipalInit } from "@clasper/auth";
import { GovernanceService } from "@clasper/proto";

/**
 * A HandlerContext carrying a verified caller, for calling handler methods directly (unit tier):
 * what serverAuthInterceptor would have put there.
 */
export function callerContext(init: Partial<PrincipalInit> & { tenantId: string }, method = "getMe"): HandlerContext {
  const principal = buildPrincipal({ kind: "user", userId: "user-1", roles: ["admin"], ...init });
  const contextValues = createContextValues().set(callContextKey, { principal, requestId: "req-1", token: "unused" });
  const desc = GovernanceService.methods.find((m) => m.localName === method) ?? GovernanceService.methods[0]!;
  return createHandlerContext({
    service: GovernanceService,
    method: desc,
    protocolName: "connect",
    requestMethod: "POST",
    url: `http://localhost/${GovernanceService.typeName}/${desc.name}`,
    contextValues,
  });
}
