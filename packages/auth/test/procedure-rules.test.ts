import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { GovernanceService, RegistryService, RuntimeService, TraceService, WorkspaceService } from "@clasper/proto";
import { authorizeProcedure, buildPrincipal, hasPermission, procedurePermissions, ROLES } from "../src/index.js";

const SERVICES = [RuntimeService, TraceService, GovernanceService, RegistryService, WorkspaceService];
const ALL_PROCEDURES = SERVICES.flatMap((service) => service.methods.map((m) => `/${service.typeName}/${m.name}`));

describe("the RBAC table covers the contracts", () => {
  it("has exactly one rule for every RPC of every service, and no stale rows", () => {
    const missing = ALL_PROCEDURES.filter((p) => !Object.hasOwn(procedurePermissions, p));
    const stale = Object.keys(procedurePermissions).filter((p) => !ALL_PROCEDURES.includes(p));
    expect({ missing, stale }).toEqual({ missing: [], stale: [] });
  });

  // Every role × every RPC: allowed exactly when the role holds the RPC's permission.
  for (const role of ROLES) {
    it(`decides every RPC for role ${role} from the table`, () => {
      const principal = buildPrincipal({ kind: "user", tenantId: "t", userId: "u", roles: [role] });
      for (const procedure of ALL_PROCEDURES) {
        const rule = procedurePermissions[procedure]!;
        const expected = rule === "authenticated" || rule === "internal" || hasPermission(principal, rule);
        let allowed = true;
        try {
          authorizeProcedure(procedure, principal, procedurePermissions);
        } catch (err) {
          expect(ConnectError.from(err).code).toBe(Code.PermissionDenied);
          allowed = false;
        }
        expect({ procedure, allowed }).toEqual({ procedure, allowed: expected });
      }
    });
  }
});
