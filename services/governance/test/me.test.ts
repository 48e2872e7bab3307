import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { PERMISSIONS } from "@clasper/auth";
import { GetMeRequestSchema, UserRole } from "@clasper/proto";
import { MeHandlers } from "../src/handlers/me.js";
import { callerContext } from "./support/caller.js";

const me = new MeHandlers();

describe("GetMe", () => {
  it("returns the caller, its roles lowest first, the highest as role, and its workspace scope", async () => {
    const res = await me.getMe(create(GetMeRequestSchema), callerContext({ tenantId: "t1", userId: "u7", workspaceId: "ws-1", roles: ["release_manager", "viewer"] }));
    expect(res.user).toMatchObject({ id: "u7", tenantId: "t1", workspaceId: "ws-1", role: UserRole.RELEASE_MANAGER, roles: [UserRole.VIEWER, UserRole.RELEASE_MANAGER] });
    expect(res.scope?.workspaces).toEqual(["ws-1"]);
    expect(res.permissions).toContain("policy:manage");
    expect(res.permissions).not.toContain("skill:promote");
    expect(res.permissions).toEqual([...res.permissions].sort());
  });

  it("resolves permissions per role: viewer ⊂ operator ⊂ release_manager ⊂ admin = all", async () => {
    const of = async (role: string) => (await me.getMe(create(GetMeRequestSchema), callerContext({ tenantId: "t", roles: [role] }))).permissions;
    const [viewer, operator, releaseManager, admin] = await Promise.all(["viewer", "operator", "release_manager", "admin"].map(of));
    expect(viewer).toEqual(["dashboard:view", "skill:view", "trace:view", "workspace:view"]);
    expect(operator).toEqual(expect.arrayContaining([...viewer!, "audit:view", "budget:view", "policy:view", "agent:execute"]));
    expect(operator).not.toContain("budget:modify");
    expect(releaseManager).toEqual(expect.arrayContaining([...operator!, "budget:modify", "override:use", "decision:resolve"]));
    expect(admin).toEqual([...PERMISSIONS]);
  });

  it("has an empty workspace scope (all workspaces) without a workspace claim", async () => {
    const res = await me.getMe(create(GetMeRequestSchema), callerContext({ tenantId: "t", roles: ["viewer"] }));
    expect(res.user).toMatchObject({ workspaceId: "", role: UserRole.VIEWER, roles: [UserRole.VIEWER] });
    expect(res.scope?.workspaces).toEqual([]);
  });
});
