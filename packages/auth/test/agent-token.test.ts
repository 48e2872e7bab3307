import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthError, createAgentTokenMinter, mintAgentToken, verifyAgentToken } from "../src/index.js";
import { hsToken, rejectionOf, SECRET, withExp } from "./helpers.js";

const refusal = (promise: Promise<unknown>) => rejectionOf(promise, AuthError);

describe("agent token (X-Agent-Token, spec §7.2)", () => {
  it("carries the contract claims with a short expiry", async () => {
    const token = await mintAgentToken({ secret: SECRET, tenantId: "t-9", workspaceId: "ws-2", userId: "user-7", agentRole: "jarvis", agentId: "a1" });
    expect(decodeProtectedHeader(token).alg).toBe("HS256");
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ type: "agent", tenant_id: "t-9", workspace_id: "ws-2", user_id: "user-7", agent_role: "jarvis", agent_id: "a1", sub: "clasper:jarvis" });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(300);
    await expect(verifyAgentToken(SECRET, token)).resolves.toMatchObject({ tenantId: "t-9", workspaceId: "ws-2", userId: "user-7", agentRole: "jarvis", agentId: "a1" });
  });

  it("honours ttlSeconds and omits agent_id when not given", async () => {
    const claims = decodeJwt(await mintAgentToken({ secret: SECRET, tenantId: "t", userId: "u", agentRole: "r", ttlSeconds: 30 }));
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(30);
    expect(claims).not.toHaveProperty("agent_id");
    expect(claims).not.toHaveProperty("workspace_id");
  });

  it("rejects wrong secret, wrong type, missing tenant, user or role, and expiry", async () => {
    const token = await mintAgentToken({ secret: SECRET, tenantId: "t", userId: "u", agentRole: "r" });
    expect((await refusal(verifyAgentToken("another-secret-0123456789-0123456789", token))).code).toBe("invalid_token");
    const caller = await hsToken(withExp({ type: "user", tenant_id: "t", user_id: "u", agent_role: "r" }));
    expect((await refusal(verifyAgentToken(SECRET, caller))).message).toBe("token is not an agent token");
    const noTenant = await hsToken(withExp({ type: "agent", user_id: "u", agent_role: "r" }));
    expect((await refusal(verifyAgentToken(SECRET, noTenant))).message).toBe("token has no tenant_id claim");
    const noUser = await hsToken(withExp({ type: "agent", tenant_id: "t", agent_role: "r" }));
    expect((await refusal(verifyAgentToken(SECRET, noUser))).code).toBe("missing_claim");
    const noRole = await hsToken(withExp({ type: "agent", tenant_id: "t", user_id: "u", agent_role: "" }));
    expect((await refusal(verifyAgentToken(SECRET, noRole))).code).toBe("missing_claim");
    const expired = await hsToken({ type: "agent", tenant_id: "t", user_id: "u", agent_role: "r", exp: Math.floor(Date.now() / 1000) - 5 });
    expect((await refusal(verifyAgentToken(SECRET, expired))).code).toBe("token_expired");
  });

  it("refuses a short secret", async () => {
    await expect(mintAgentToken({ secret: "short", tenantId: "t", userId: "u", agentRole: "r" })).rejects.toThrow(/AGENT_JWT_SECRET/);
  });
});

describe("agent token minter (one token per subject, reused for part of its lifetime)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const subject = { tenantId: "t1", userId: "u", agentRole: "r" };

  it("hands the same token to the same subject until the reuse window ends, then a fresh one", async () => {
    vi.useFakeTimers({ now: new Date("2026-11-24T10:00:00.000Z"), toFake: ["Date"] });
    const mint = createAgentTokenMinter({ secret: SECRET, ttlSeconds: 300 });
    const first = await mint(subject);
    vi.advanceTimersByTime(149_000);
    expect(await mint(subject)).toBe(first);
    vi.advanceTimersByTime(2_000);
    const second = await mint(subject);
    expect(second).not.toBe(first);
    const claims = decodeJwt(second);
    // Handed out at most half its lifetime after minting: at least 150 s of it are left.
    expect((claims.exp ?? 0) - Math.floor(Date.now() / 1000)).toBe(300);
    await expect(verifyAgentToken(SECRET, second)).resolves.toMatchObject({ userId: "u", agentRole: "r" });
  });

  it("mints separately per tenant, workspace, user, role and agent, and signs the tenant", async () => {
    vi.useFakeTimers({ now: new Date("2026-11-24T10:00:00.000Z"), toFake: ["Date"] });
    const mint = createAgentTokenMinter({ secret: SECRET });
    const first = await mint(subject);
    vi.advanceTimersByTime(5_000);
    // Claims carry iat, so a token minted later for another subject is different bytes.
    for (const other of [{ ...subject, tenantId: "t2" }, { ...subject, workspaceId: "w" }, { ...subject, userId: "v" }, { ...subject, agentRole: "s" }, { ...subject, agentId: "a" }]) {
      expect(await mint(other)).not.toBe(first);
    }
    expect(decodeJwt(await mint({ ...subject, tenantId: "t2" }))).toMatchObject({ tenant_id: "t2", user_id: "u" });
    expect(decodeJwt(await mint({ ...subject, userId: "v" }))).toMatchObject({ user_id: "v", agent_role: "r" });
    expect(await mint(subject)).toBe(first);
  });

  it("refuses a short secret when created", () => {
    expect(() => createAgentTokenMinter({ secret: "short" })).toThrow(/AGENT_JWT_SECRET/);
  });
});
