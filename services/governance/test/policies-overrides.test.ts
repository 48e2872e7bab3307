import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorInfoOf } from "@clasper/core";
import { buildPrincipal } from "@clasper/auth";
import { testBackendFromEnv } from "@clasper/db/testing";
import { OverrideReasonCode } from "@clasper/proto";
import { authorizeOverride } from "../src/overrides.js";
import { listAuditEntries } from "../src/store/audit.js";
import { rejection, usePoliciesHarness } from "./policies-support.js";

const h = usePoliciesHarness();

const override = { reasonCode: OverrideReasonCode.HOTFIX, justification: "customer-facing outage fix" };

describe(`overrides (${testBackendFromEnv()})`, () => {
  it("AuthorizeOverride audits ops_override_used with actor, role, action, target, reason", async () => {
    const manager = h.client({ tenantId: "t-ovr", userId: "rm-1", roles: ["release_manager"] });
    const res = await manager.authorizeOverride({ action: "workspace_promote", targetId: "ws-1", override, details: { failed_checks: ["skills"] } });
    const entries = (await listAuditEntries(h.db, "t-ovr", { eventType: "ops_override_used" }, { limit: 5 })).entries;
    expect(entries).toHaveLength(1);
    expect(entries[0]?.seq).toBe(res.auditSeq);
    expect(entries[0]?.data).toEqual({
      actor: "rm-1",
      role: "release_manager",
      action: "workspace_promote",
      target_id: "ws-1",
      reason_code: "hotfix",
      justification: override.justification,
      details: { failed_checks: ["skills"] },
    });
  });

  it("refuses roles without override:use, and audits nothing", async () => {
    const operator = h.client({ tenantId: "t-ovr-deny", roles: ["operator"] });
    const err = await rejection(operator.authorizeOverride({ action: "workspace_promote", targetId: "ws-1", override }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect((await listAuditEntries(h.db, "t-ovr-deny", {}, { limit: 5 })).total).toBe(0);
  });

  it("validates reason code, justification and action", async () => {
    const admin = h.client({ tenantId: "t-ovr-bad", roles: ["admin"] });
    const short = await rejection(admin.authorizeOverride({ action: "x", targetId: "t", override: { ...override, justification: "too short" } }));
    expect(errorInfoOf(short)?.field).toBe("override.justification");
    const noReason = await rejection(admin.authorizeOverride({ action: "x", targetId: "t", override: { justification: override.justification } }));
    expect(errorInfoOf(noReason)?.field).toBe("override.reason_code");
    const badAction = await rejection(admin.authorizeOverride({ action: "Bad Action", targetId: "t", override }));
    expect(errorInfoOf(badAction)?.field).toBe("action");
    const missing = await rejection(admin.authorizeOverride({ action: "x", targetId: "t" }));
    expect(errorInfoOf(missing)?.field).toBe("override");
  });

  it("the store helper trims the justification before counting it", async () => {
    const principal = buildPrincipal({ kind: "user", tenantId: "t-ovr-helper", userId: "a", roles: ["admin"] });
    const padded = await rejection(authorizeOverride(h.db, principal, { reasonCode: OverrideReasonCode.OTHER, justification: "   tiny        " }, { action: "x", targetId: "t" }));
    expect(errorInfoOf(padded)?.field).toBe("override.justification");
    const viewer = buildPrincipal({ kind: "user", tenantId: "t-ovr-helper", userId: "v", roles: ["viewer"] });
    expect((await rejection(authorizeOverride(h.db, viewer, override, { action: "x", targetId: "t" }))).code).toBe(Code.PermissionDenied);
  });
});
