import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { permissionsForRoles, principalOf, type Role } from "@clasper/auth";
import {
  AccessScopeSchema,
  GetMeResponseSchema,
  PrincipalSchema,
  UserRole,
  type GetMeRequest,
  type GetMeResponse,
} from "@clasper/proto";

const ROLE_TO_PROTO: Record<Role, UserRole> = {
  viewer: UserRole.VIEWER,
  operator: UserRole.OPERATOR,
  release_manager: UserRole.RELEASE_MANAGER,
  admin: UserRole.ADMIN,
};

/** GET /ops/api/me: who the verified caller is and what it may do, as every service decides it. */
export class MeHandlers {
  async getMe(_req: GetMeRequest, ctx: HandlerContext): Promise<GetMeResponse> {
    const principal = principalOf(ctx);
    return create(GetMeResponseSchema, {
      user: create(PrincipalSchema, {
        id: principal.userId,
        tenantId: principal.tenantId,
        workspaceId: principal.workspaceId ?? "",
        role: ROLE_TO_PROTO[principal.role],
        roles: principal.roles.map((role) => ROLE_TO_PROTO[role]),
      }),
      // Recomputed from the roles by this service's table (not the carried list), like every check.
      permissions: permissionsForRoles(principal.roles),
      scope: create(AccessScopeSchema, { workspaces: principal.workspaceId ? [principal.workspaceId] : [] }),
    });
  }
}
