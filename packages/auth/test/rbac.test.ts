import { Code, ConnectError } from "@connectrpc/connect";
import { errorInfoOf } from "@clasper/core";
import { describe, expect, it } from "vitest";
import {
  authorizeProcedure,
  buildPrincipal,
  canAccessTenant,
  hasPermission,
  PERMISSIONS,
  permissionsForRoles,
  requirePermission,
  type Permission,
  type Role,
  procedurePermissions,
} from "../src/index.js";

const as = (role: Role) => buildPrincipal({ kind: "user", tenantId: "t1", userId: "u1", roles: [role] });

function denial(run: () => void): ConnectError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected a denial");
}

// Spelled out from spec §5.3 (plus the agent-runtime permissions), independently of the source.
const VIEWER: Permission[] = ["dashboard:view", "skill:view", "trace:view", "workspace:view"];
const OPERATOR: Permission[] = [
  ...VIEWER,
  "adapter:view",
  "agent:execute",
  "audit:view",
  "budget:view",
  "eval:run",
  "policy:view",
  "retention:view",
  "trace:annotate",
  "trace:diff",
  "trace:label",
];
const RELEASE_MANAGER: Permission[] = [
  ...OPERATOR,
  "adapter:manage_keys",
  "budget:modify",
  "decision:resolve",
  "override:use",
  "policy:manage",
  "retention:modify",
  "skill:publish",
  "workspace:promote",
  "workspace:rollback",
];
const ADMIN: Permission[] = [...RELEASE_MANAGER, "skill:promote", "trace:view_payloads", "workspace:lock"];

describe("permission table", () => {
  it.each([
    ["viewer", VIEWER],
    ["operator", OPERATOR],
    ["release_manager", RELEASE_MANAGER],
    ["admin", ADMIN],
  ] as const)("%s holds exactly its permissions", (role, expected) => {
    expect(permissionsForRoles([role])).toEqual([...expected].sort());
    for (const permission of PERMISSIONS) {
      expect(hasPermission(as(role), permission)).toBe(expected.includes(permission));
    }
  });

  it("knows every permission the spec names", () => {
    expect([...PERMISSIONS]).toEqual([...ADMIN].sort());
    expect(PERMISSIONS).toHaveLength(26);
  });

  it("unions several roles and treats no roles as nothing", () => {
    expect(permissionsForRoles(["viewer", "release_manager"])).toEqual([...RELEASE_MANAGER].sort());
    expect(permissionsForRoles([])).toEqual([]);
  });
});

describe("requirePermission", () => {
  it("passes silently when held", () => {
    expect(() => requirePermission(as("admin"), "trace:view_payloads")).not.toThrow();
  });

  it("names the permission and the roles that hold it", () => {
    const err = denial(() => requirePermission(as("operator"), "retention:modify"));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe("missing permission retention:modify (requires role release_manager or admin)");
    expect(errorInfoOf(err)?.code).toBe("permission_denied");
  });
});

describe("authorizeProcedure", () => {
  it("applies the retention rules", () => {
    const get = "/clasper.trace.v1.TraceService/GetRetentionPolicy";
    const set = "/clasper.trace.v1.TraceService/SetRetentionPolicy";
    expect(() => authorizeProcedure(get, as("operator"), procedurePermissions)).not.toThrow();
    expect(denial(() => authorizeProcedure(get, as("viewer"), procedurePermissions)).code).toBe(Code.PermissionDenied);
    expect(() => authorizeProcedure(set, as("release_manager"), procedurePermissions)).not.toThrow();
    expect(denial(() => authorizeProcedure(set, as("operator"), procedurePermissions)).rawMessage).toMatch(/retention:modify/);
  });

  it("denies procedures with no rule, even to admins", () => {
    const err = denial(() => authorizeProcedure("/clasper.trace.v1.TraceService/DropEverything", as("admin"), procedurePermissions));
    expect(errorInfoOf(err)?.code).toBe("procedure_not_allowed");
    // Inherited object keys are not rules.
    expect(() => authorizeProcedure("constructor", as("admin"), procedurePermissions)).toThrow(ConnectError);
  });

  it("lets 'internal' procedures (no REST route) through for any verified context", () => {
    const rules = { "/x.v1.S/Sweep": "internal" } as const;
    const service = buildPrincipal({ kind: "service", tenantId: "t1", userId: "service:x", roles: ["admin"] });
    expect(() => authorizeProcedure("/x.v1.S/Sweep", service, rules)).not.toThrow();
    expect(() => authorizeProcedure("/x.v1.S/Sweep", as("viewer"), rules)).not.toThrow();
  });
});

describe("tenant reach", () => {
  it("lets admins reach listed tenants only", () => {
    const admin = buildPrincipal({ kind: "user", tenantId: "t1", userId: "u", roles: ["admin"], allowedTenants: ["t2"] });
    expect([canAccessTenant(admin, "t1"), canAccessTenant(admin, "t2"), canAccessTenant(admin, "t3")]).toEqual([
      true,
      true,
      false,
    ]);
    const op = buildPrincipal({ kind: "user", tenantId: "t1", userId: "u", roles: ["operator"], allowedTenants: ["t2"] });
    expect(canAccessTenant(op, "t2")).toBe(false);
  });
});
