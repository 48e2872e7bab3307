import { Code, type ConnectError } from "@connectrpc/connect";
import { clasperError } from "@clasper/core";
import { isRole, permissionsForRoles, roleRank, type Permission, type Role } from "./rbac.js";

/**
 * Who is calling, as every service sees it. `kind` says where the identity came from: a verified
 * bearer token ("user"), the static daemon key ("daemon"), or a Clasper background job
 * ("service"); only the gateway and runAsService mint contexts, so it cannot be claimed by a caller.
 */
export interface Principal {
  kind: "user" | "daemon" | "service";
  tenantId: string;
  userId: string;
  workspaceId?: string;
  /** Known roles only, lowest first, never empty. */
  roles: Role[];
  /** The highest of `roles`: the one permission checks use. */
  role: Role;
  /** Everything `roles` grant, sorted. */
  permissions: Permission[];
  /** Other tenants an admin may act on (spec §5.2); absent for everyone else. */
  allowedTenants?: string[];
}

export interface PrincipalInit {
  kind: Principal["kind"];
  tenantId: string;
  userId: string;
  workspaceId?: string | undefined;
  roles: readonly string[];
  allowedTenants?: readonly string[] | undefined;
}

/** The one place roles are normalised and permissions derived, whatever the credential. */
export function buildPrincipal(init: PrincipalInit): Principal {
  const roles = normaliseRoles(init.roles);
  const role = roles[roles.length - 1] ?? "viewer";
  const principal: Principal = {
    kind: init.kind,
    tenantId: init.tenantId,
    userId: init.userId,
    roles,
    role,
    permissions: permissionsForRoles(roles),
  };
  if (init.workspaceId) principal.workspaceId = init.workspaceId;
  // Cross-tenant reach is an admin power only; dropping the list for others keeps it from
  // being misread later.
  if (role === "admin" && init.allowedTenants && init.allowedTenants.length > 0) {
    principal.allowedTenants = [...new Set(init.allowedTenants)].sort();
  }
  return principal;
}

/** Lower-cased, unknown names dropped, de-duplicated, lowest first; none left → viewer. */
export function normaliseRoles(raw: readonly string[]): Role[] {
  const known = new Set<Role>();
  for (const name of raw) {
    const lower = name.trim().toLowerCase();
    if (isRole(lower)) known.add(lower);
  }
  if (known.size === 0) return ["viewer"];
  return [...known].sort((a, b) => roleRank(a) - roleRank(b));
}

/** spec §5.2: the token's own tenant, or one an admin's allowed_tenants lists. */
export function canAccessTenant(principal: Principal, tenantId: string): boolean {
  if (principal.tenantId === tenantId) return true;
  return principal.role === "admin" && (principal.allowedTenants ?? []).includes(tenantId);
}

/** The workspace of an execution that names none and whose caller's token is bound to none. */
export const DEFAULT_WORKSPACE = "default";

/** 403 `workspace_access_denied`: the caller's token is bound to a workspace the action leaves. */
export function workspaceDenied(message: string, field?: string): ConnectError {
  return clasperError(Code.PermissionDenied, message, { reason: "workspace_access_denied", ...(field ? { field } : {}) });
}

/**
 * The workspace a request acts on: a token bound to a workspace acts on that one only (asking for
 * another is 403 `workspace_access_denied`, naming the field); an unbound token acts on the one it
 * asks for, or on all of its tenant's when it names none (undefined).
 */
export function workspaceScope(principal: Pick<Principal, "workspaceId">, requested: string | undefined, field = "workspace_id"): string | undefined {
  if (requested && principal.workspaceId && requested !== principal.workspaceId) {
    throw workspaceDenied(`${field} ${requested} is outside the token's workspace`, field);
  }
  return principal.workspaceId ?? (requested || undefined);
}

/**
 * The tenant, for an action on all of its workspaces at once (a tenant-wide setting, the whole
 * audit chain); a token bound to one workspace may not take it: 403 `workspace_access_denied`.
 */
export function tenantWide(principal: Pick<Principal, "tenantId" | "workspaceId">, what: string): string {
  if (principal.workspaceId !== undefined) throw workspaceDenied(`${what} spans every workspace of the tenant; use a token not bound to a workspace`);
  return principal.tenantId;
}
