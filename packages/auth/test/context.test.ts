import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthError, buildPrincipal, createContextSigner, createContextVerifier } from "../src/index.js";
import { rejectionOf, SECRET } from "./helpers.js";

const principal = buildPrincipal({
  kind: "user",
  tenantId: "t1",
  userId: "u1",
  workspaceId: "w1",
  roles: ["release_manager"],
});

const refusal = (promise: Promise<unknown>) => rejectionOf(promise, AuthError);

afterEach(() => {
  vi.useRealTimers();
});

describe("internal context", () => {
  const signer = createContextSigner(SECRET);

  it("round-trips principal and request id", async () => {
    const token = await signer.sign({ principal, requestId: "req-1" });
    await expect(createContextVerifier(SECRET).verify(token)).resolves.toEqual({ principal, requestId: "req-1" });
  });

  it("rejects tampering, another secret, and a caller-style JWT signed with the same secret", async () => {
    const verifier = createContextVerifier(SECRET);
    const token = await signer.sign({ principal, requestId: "req-1" });
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as { clasper: { tenant_id: string } };
    claims.clasper.tenant_id = "t2";
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    expect((await refusal(verifier.verify(forged))).code).toBe("invalid_token");

    const other = createContextSigner("other-secret-0123456789-0123456789-0123");
    expect((await refusal(verifier.verify(await other.sign({ principal, requestId: "r" })))).code).toBe("invalid_token");

    const callerJwt = await new SignJWT({ clasper: { kind: "service", tenant_id: "t1", user_id: "x", roles: ["admin"] }, request_id: "r" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("clasper-gateway")
      .setAudience("clasper-internal")
      .setExpirationTime("1m")
      .sign(new TextEncoder().encode(SECRET));
    expect((await refusal(verifier.verify(callerJwt))).code).toBe("invalid_token");
  });

  it("expires after 60 seconds, even when cached", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
    const verifier = createContextVerifier(SECRET);
    const token = await signer.sign({ principal, requestId: "req-1" });
    vi.setSystemTime(new Date("2030-01-01T00:00:59Z"));
    await expect(verifier.verify(token)).resolves.toMatchObject({ requestId: "req-1" });
    vi.setSystemTime(new Date("2030-01-01T00:01:01Z"));
    expect((await refusal(verifier.verify(token))).code).toBe("token_expired");
  });

  it("hands each caller its own copy from the cache", async () => {
    const verifier = createContextVerifier(SECRET);
    const token = await signer.sign({ principal, requestId: "req-1" });
    const first = await verifier.verify(token);
    first.principal.roles.push("admin");
    first.principal.tenantId = "t2";
    expect((await verifier.verify(token)).principal).toEqual(principal);
  });

  it("refuses a short secret, naming CLASPER_INTERNAL_SECRET", () => {
    expect(() => createContextSigner("short")).toThrow(/CLASPER_INTERNAL_SECRET/);
    expect(() => createContextVerifier("short")).toThrow(/CLASPER_INTERNAL_SECRET/);
  });
});
