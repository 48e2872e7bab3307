import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { startTestIssuer, type TestIssuer } from "../src/index.js";

let issuer: TestIssuer | undefined;
afterEach(async () => {
  await issuer?.close();
  issuer = undefined;
});

describe("test issuer", () => {
  it("signs RS256 tokens that verify against its JWKS, with iss, exp and aud", async () => {
    issuer = await startTestIssuer({ audience: "clasper" });
    const token = await issuer.sign({ sub: "u1", tenant_id: "t1" });
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "RS256", kid: issuer.kid });
    const jwks = createRemoteJWKSet(new URL(issuer.jwksUrl));
    const { payload } = await jwtVerify(token, jwks, { issuer: issuer.issuer, audience: "clasper" });
    expect(payload).toMatchObject({ sub: "u1", tenant_id: "t1", iss: issuer.issuer, aud: "clasper" });
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(issuer.jwksFetches).toBe(1);
  });

  it("mints expired tokens and tokens from another issuer on request", async () => {
    issuer = await startTestIssuer();
    const jwks = createRemoteJWKSet(new URL(issuer.jwksUrl));
    await expect(jwtVerify(await issuer.sign({ sub: "u" }, { ttlSeconds: -60 }), jwks)).rejects.toThrow(/exp/);
    await expect(jwtVerify(await issuer.sign({ sub: "u" }, { issuer: "https://evil" }), jwks, { issuer: issuer.issuer })).rejects.toThrow(/iss/);
  });

  it("serves a discovery document and rotates to a fresh key", async () => {
    issuer = await startTestIssuer();
    const discovery = (await (await fetch(`${issuer.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ issuer: issuer.issuer, jwks_uri: issuer.jwksUrl });
    const before = await issuer.sign({ sub: "u" });
    const oldKid = issuer.kid;
    await issuer.rotate();
    expect(issuer.kid).not.toBe(oldKid);
    const jwks = createRemoteJWKSet(new URL(issuer.jwksUrl));
    await expect(jwtVerify(await issuer.sign({ sub: "u" }), jwks)).resolves.toBeDefined();
    await expect(jwtVerify(before, jwks)).rejects.toThrow();
  });
});
