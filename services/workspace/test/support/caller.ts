import { createContextValues, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { buildPrincipal, callContextKey, type PrincipalInit } from "@clasper/auth";
import { WorkspaceService } from "@clasper/proto";

/** A HandlerContext carrying a verified caller, as the auth interceptor leaves it (unit tier). */
export function callerContext(init: Partial<PrincipalInit> = {}, method = "resolveWorkspace"): HandlerContext {
  const principal = buildPrincipal({ kind: "user", tenantId: "tenant-a", userId: "user-1", roles: ["admin"], ...init });
  const contextValues = createContextValues().set(callContextKey, { principal, requestId: "req-1", token: "unused" });
  const desc = WorkspaceService.methods.find((m) => m.localName === method) ?? WorkspaceService.methods[0]!;
  return createHandlerContext({
    service: WorkspaceService,
    method: desc,
    protocolName: "connect",
    requestMethod: "POST",
    url: `http://localhost/${WorkspaceService.typeName}/${desc.name}`,
    contextValues,
  });
}
