import { permissionDenied } from "@clasper/core";
import type { Principal } from "./principal.js";

/** Ranked lowest first; a role holds every permission of the roles below it. */
export const ROLES = ["viewer", "operator", "release_manager", "admin"] as const;
export type Role = (typeof ROLES)[number];

export function roleRank(role: Role): number {
  return ROLES.indexOf(role) + 1;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/**
 * The lowest role that holds each permission (spec §5.3 plus what the agent runtime needs).
 * Every row of the spec table is monotone in rank, so "minimum role" is the whole table; keeping
 * it this way means a new permission cannot be granted to admin but forgotten for nobody.
 */
const MINIMUM_ROLE = {
  "trace:view": "viewer",
  "trace:annotate": "operator",
  "trace:diff": "operator",
  "trace:label": "operator",
  /** Raw prompts and tool payloads: admin only (ARCHITECTURE §4). */
  "trace:view_payloads": "admin",
  "workspace:view": "viewer",
  "workspace:promote": "release_manager",
  "workspace:rollback": "release_manager",
  "workspace:lock": "admin",
  "skill:view": "viewer",
  "skill:publish": "release_manager",
  "skill:promote": "admin",
  "budget:view": "operator",
  "budget:modify": "release_manager",
  "retention:view": "operator",
  "retention:modify": "release_manager",
  "dashboard:view": "viewer",
  "audit:view": "operator",
  "policy:view": "operator",
  "policy:manage": "release_manager",
  "decision:resolve": "release_manager",
  "adapter:view": "operator",
  "adapter:manage_keys": "release_manager",
  "override:use": "release_manager",
  "agent:execute": "operator",
  "eval:run": "operator",
} as const satisfies Record<string, Role>;

export type Permission = keyof typeof MINIMUM_ROLE;

export const PERMISSIONS: readonly Permission[] = (Object.keys(MINIMUM_ROLE) as Permission[]).sort();

export function minimumRole(permission: Permission): Role {
  return MINIMUM_ROLE[permission];
}

/** Roles that hold `permission`, lowest first, for error messages and docs. */
export function rolesWithPermission(permission: Permission): Role[] {
  const floor = roleRank(MINIMUM_ROLE[permission]);
  return ROLES.filter((role) => roleRank(role) >= floor);
}

/** The union of the roles' permissions, sorted so it compares and prints stably. */
export function permissionsForRoles(roles: readonly Role[]): Permission[] {
  const top = Math.max(0, ...roles.map(roleRank));
  return PERMISSIONS.filter((permission) => roleRank(MINIMUM_ROLE[permission]) <= top);
}

/**
 * Decided from the principal's role by this package's table, not from its carried permission
 * list, so a service enforces its own (deployed) rules even if a peer runs an older table.
 */
export function hasPermission(principal: Pick<Principal, "role">, permission: Permission): boolean {
  return roleRank(principal.role) >= roleRank(MINIMUM_ROLE[permission]);
}

export function requirePermission(principal: Pick<Principal, "role">, permission: Permission): void {
  if (!hasPermission(principal, permission)) {
    throw permissionDenied(
      `missing permission ${permission} (requires role ${rolesWithPermission(permission).join(" or ")})`,
    );
  }
}

/**
 * What an RPC requires: a permission; "authenticated" (any verified caller); or "internal" (an
 * RPC with no REST route, called only by Clasper services, either forwarding the caller's context
 * or acting as a service principal; the handler checks what it needs, e.g. Preflight checks the
 * permission named in its request). The table itself is in procedure-rules.ts.
 */
export type ProcedureRule = Permission | "authenticated" | "internal";

/** Deny by default: an RPC nobody classified is refused rather than silently public. */
export function authorizeProcedure(
  procedure: string,
  principal: Principal,
  table: Readonly<Record<string, ProcedureRule>>,
): void {
  const rule = Object.hasOwn(table, procedure) ? table[procedure] : undefined;
  if (rule === undefined) {
    throw permissionDenied(`procedure ${procedure} has no access rule`, "procedure_not_allowed");
  }
  if (rule === "authenticated" || rule === "internal") return;
  requirePermission(principal, rule);
}
