import { exportSPKI, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthConfigError, AuthError, createCallerVerifier, type CallerVerifierOptions } from "../src/index.js";
import {
  asymmetricToken,
  hsToken,
  rejectionOf,
  SECRET,
  signingKey,
  startJwksServer,
  unsecuredToken,
  withExp,
  type SigningKey,
} from "./helpers.js";

const BASE = { tenant_id: "t1", user_id: "u1", roles: ["operator"] };

const refusal = (promise: Promise<unknown>) => rejectionOf(promise, AuthError);

function hsVerifier(extra: Partial<CallerVerifierOptions> = {}) {
  return createCallerVerifier({ hsSecret: SECRET, ...extra });
}

describe("configuration", () => {
  it("refuses a secret shorter than 32 bytes, naming the variable", () => {
    expect(() => createCallerVerifier({ hsSecret: "short-secret" })).toThrow(AuthConfigError);
    expect(() => createCallerVerifier({ hsSecret: "x".repeat(31) })).toThrow(/CLASPER_AUTH_JWT_SECRET/);
    expect(() => createCallerVerifier({ hsSecret: "x".repeat(32) })).not.toThrow();
  });

  it("refuses both key sources, none at all, and algorithms that do not fit the key source", () => {
    expect(() => createCallerVerifier({ hsSecret: SECRET, jwksUrl: "http://127.0.0.1:1/jwks" })).toThrow(/only one/);
    expect(() => createCallerVerifier({})).toThrow(/CLASPER_AUTH_JWT_SECRET or CLASPER_AUTH_JWKS_URL/);
    expect(() => createCallerVerifier({ jwksUrl: "http://127.0.0.1:1/jwks", algorithms: ["RS256", "HS256"] })).toThrow(
      /CLASPER_AUTH_ALGORITHMS contains HS256/,
    );
    expect(() => createCallerVerifier({ hsSecret: SECRET, algorithms: ["none"] })).toThrow(/CLASPER_AUTH_ALGORITHMS/);
    expect(() => createCallerVerifier({ jwksUrl: "not a url" })).toThrow(/CLASPER_AUTH_JWKS_URL/);
  });
});

describe("HS256 bearer tokens", () => {
  const verifier = hsVerifier();

  it("accepts a valid token and builds the principal", async () => {
    const principal = await verifier.verify(`Bearer ${await hsToken(withExp({ ...BASE, workspace_id: "w1" }))}`);
    expect(principal).toEqual({
      kind: "user",
      tenantId: "t1",
      userId: "u1",
      workspaceId: "w1",
      roles: ["operator"],
      role: "operator",
      permissions: expect.arrayContaining(["agent:execute", "trace:annotate"]) as unknown,
    });
    expect(principal.permissions).toEqual([...principal.permissions].sort());
    expect(principal.permissions).not.toContain("trace:view_payloads");
  });

  it("answers missing_token without a header", async () => {
    for (const header of [undefined, "", "   "]) {
      const err = await refusal(verifier.verify(header));
      expect([err.status, err.code]).toEqual([401, "missing_token"]);
    }
  });

  it("answers invalid_token for malformed headers", async () => {
    const token = await hsToken(withExp(BASE));
    for (const header of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", `Bearer ${token} extra`, token, "Bearer not-a-jwt"]) {
      expect((await refusal(verifier.verify(header))).code).toBe("invalid_token");
    }
  });

  it("accepts the scheme case-insensitively", async () => {
    await expect(verifier.verify(`bearer ${await hsToken(withExp(BASE))}`)).resolves.toMatchObject({ tenantId: "t1" });
  });

  it("rejects a bad signature without echoing key material", async () => {
    const err = await refusal(verifier.verify(`Bearer ${await hsToken(withExp(BASE), "another-secret-another-secret-another")}`));
    expect(err.code).toBe("invalid_token");
    expect(err.message).toBe("token signature is invalid");
    expect(JSON.stringify(err) + err.message).not.toContain(SECRET);
  });

  it("rejects an expired token as token_expired, honouring the clock tolerance", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await hsToken({ ...BASE, iat: now - 600, exp: now - 120 });
    expect((await refusal(verifier.verify(`Bearer ${expired}`))).code).toBe("token_expired");
    const justExpired = await hsToken({ ...BASE, iat: now - 600, exp: now - 10 });
    await expect(verifier.verify(`Bearer ${justExpired}`)).resolves.toMatchObject({ userId: "u1" });
    const strict = hsVerifier({ clockToleranceSec: 0 });
    expect((await refusal(strict.verify(`Bearer ${justExpired}`))).code).toBe("token_expired");
  });

  it("requires exp", async () => {
    const err = await refusal(verifier.verify(`Bearer ${await hsToken(BASE)}`));
    expect([err.code, err.message]).toEqual(["missing_claim", "token has no exp claim"]);
  });

  it("rejects alg: none", async () => {
    expect((await refusal(verifier.verify(`Bearer ${unsecuredToken(withExp(BASE))}`))).code).toBe("invalid_token");
  });

  it("requires tenant_id and a user", async () => {
    const noTenant = await refusal(verifier.verify(`Bearer ${await hsToken(withExp({ user_id: "u1" }))}`));
    expect([noTenant.code, noTenant.message]).toEqual(["missing_claim", "token has no tenant_id claim"]);
    const emptyTenant = await refusal(verifier.verify(`Bearer ${await hsToken(withExp({ ...BASE, tenant_id: " " }))}`));
    expect(emptyTenant.code).toBe("missing_claim");
    const numericTenant = await refusal(verifier.verify(`Bearer ${await hsToken(withExp({ ...BASE, tenant_id: 7 }))}`));
    expect(numericTenant.code).toBe("missing_claim");
    const noUser = await refusal(verifier.verify(`Bearer ${await hsToken(withExp({ tenant_id: "t1" }))}`));
    expect(noUser.code).toBe("missing_claim");
    const viaSub = await verifier.verify(`Bearer ${await hsToken(withExp({ tenant_id: "t1", sub: "s1" }))}`);
    expect(viaSub.userId).toBe("s1");
  });

  it("checks iss and aud when configured", async () => {
    const strict = hsVerifier({ issuer: "https://saas.example", audience: "clasper" });
    const good = await hsToken(withExp({ ...BASE, iss: "https://saas.example", aud: "clasper" }));
    await expect(strict.verify(`Bearer ${good}`)).resolves.toMatchObject({ tenantId: "t1" });
    const wrongIss = await hsToken(withExp({ ...BASE, iss: "https://evil.example", aud: "clasper" }));
    expect((await refusal(strict.verify(`Bearer ${wrongIss}`))).message).toBe("token iss claim is not accepted");
    const wrongAud = await hsToken(withExp({ ...BASE, iss: "https://saas.example", aud: "other" }));
    expect((await refusal(strict.verify(`Bearer ${wrongAud}`))).message).toBe("token aud claim is not accepted");
    const noIss = await hsToken(withExp({ ...BASE, aud: "clasper" }));
    expect((await refusal(strict.verify(`Bearer ${noIss}`))).code).toBe("missing_claim");
  });

  it("rejects a token that is not yet valid", async () => {
    const future = await hsToken(withExp({ ...BASE, nbf: Math.floor(Date.now() / 1000) + 3600 }, 7200));
    expect((await refusal(verifier.verify(`Bearer ${future}`))).code).toBe("invalid_token");
  });
});

describe("claim mapping and roles", () => {
  const verifier = hsVerifier();
  const rolesOf = async (claims: Record<string, unknown>, v = verifier) =>
    (await v.verify(`Bearer ${await hsToken(withExp({ tenant_id: "t1", user_id: "u1", ...claims }))}`)).roles;

  it("parses arrays and comma strings, lower-cases, drops unknown names, and orders by rank", async () => {
    expect(await rolesOf({ roles: ["Admin", "superuser", "viewer"] })).toEqual(["viewer", "admin"]);
    expect(await rolesOf({ roles: "operator, RELEASE_MANAGER ,bogus" })).toEqual(["operator", "release_manager"]);
    expect(await rolesOf({ role: "operator" })).toEqual(["operator"]);
    expect(await rolesOf({})).toEqual(["viewer"]);
    expect(await rolesOf({ roles: ["root"] })).toEqual(["viewer"]);
    expect(await rolesOf({ roles: 42 })).toEqual(["viewer"]);
  });

  it("uses the highest role", async () => {
    const p = await verifier.verify(`Bearer ${await hsToken(withExp({ ...BASE, roles: "viewer,admin,operator" }))}`);
    expect(p.role).toBe("admin");
    expect(p.permissions).toContain("trace:view_payloads");
  });

  it("reads configured claim names, dotted paths, and URL-named claims", async () => {
    const custom = hsVerifier({
      claims: {
        tenant: "https://clasper.dev/tenant",
        user: "email",
        workspace: "ctx.workspace",
        roles: "realm_access.roles",
        allowedTenants: "ctx.tenants",
      },
    });
    const p = await custom.verify(
      `Bearer ${await hsToken(
        withExp({
          "https://clasper.dev/tenant": "acme",
          email: "ada@acme.test",
          ctx: { workspace: "main", tenants: "acme-eu, acme-us" },
          realm_access: { roles: ["admin", "offline_access"] },
        }),
      )}`,
    );
    expect(p).toMatchObject({
      tenantId: "acme",
      userId: "ada@acme.test",
      workspaceId: "main",
      roles: ["admin"],
      allowedTenants: ["acme-eu", "acme-us"],
    });
  });

  it("keeps allowed tenants only for admins", async () => {
    const p = await verifier.verify(`Bearer ${await hsToken(withExp({ ...BASE, allowed_tenants: ["t2"] }))}`);
    expect(p.allowedTenants).toBeUndefined();
  });
});

describe("JWKS (RS256, ES256, EdDSA) with rotation", () => {
  let rsa: SigningKey;
  let rotated: SigningKey;
  let ec: SigningKey;
  let jwks: Awaited<ReturnType<typeof startJwksServer>>;

  beforeAll(async () => {
    [rsa, rotated, ec] = await Promise.all([signingKey("k1"), signingKey("k2"), signingKey("k3", "ES256")]);
    jwks = await startJwksServer([rsa, ec]);
  });
  afterAll(() => jwks.close());

  it("accepts RS256 and ES256 tokens signed by published keys", async () => {
    const verifier = createCallerVerifier({ jwksUrl: jwks.url });
    await expect(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), rsa)}`)).resolves.toMatchObject({
      tenantId: "t1",
    });
    await expect(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), ec)}`)).resolves.toMatchObject({
      userId: "u1",
    });
  });

  it("accepts EdDSA", async () => {
    const ed = await signingKey("k-ed", "EdDSA");
    const server = await startJwksServer([ed]);
    try {
      const verifier = createCallerVerifier({ jwksUrl: server.url });
      await expect(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), ed)}`)).resolves.toMatchObject({
        tenantId: "t1",
      });
    } finally {
      await server.close();
    }
  });

  it("rejects HS256 tokens, including one keyed with the public key (algorithm confusion), and alg: none", async () => {
    const verifier = createCallerVerifier({ jwksUrl: jwks.url });
    const { publicKey } = await generateKeyPair("RS256", { extractable: true });
    const pem = new TextEncoder().encode(await exportSPKI(publicKey));
    for (const token of [await hsToken(withExp(BASE)), await hsToken(withExp(BASE), pem), unsecuredToken(withExp(BASE))]) {
      const err = await refusal(verifier.verify(`Bearer ${token}`));
      expect([err.code, err.message]).toEqual(["invalid_token", "token algorithm is not accepted"]);
    }
  });

  it("honours a narrowed algorithm list", async () => {
    const verifier = createCallerVerifier({ jwksUrl: jwks.url, algorithms: ["ES256"] });
    expect((await refusal(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), rsa)}`))).code).toBe(
      "invalid_token",
    );
  });

  it("refetches the key set when a token names an unknown kid", async () => {
    const verifier = createCallerVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 0 });
    await verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), rsa)}`);
    const before = jwks.hits();
    jwks.setKeys([rotated]);
    await expect(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), rotated)}`)).resolves.toMatchObject({
      tenantId: "t1",
    });
    expect(jwks.hits()).toBe(before + 1);
    jwks.setKeys([rsa, ec]);
  });

  it("rejects a token from a key that is not published", async () => {
    const verifier = createCallerVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 0 });
    const stranger = await signingKey("k1");
    const err = await refusal(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), stranger)}`));
    expect(err.code).toBe("invalid_token");
  });

  it("answers auth_unavailable (503) when the key set cannot be fetched", async () => {
    const down = await startJwksServer([]);
    const url = down.url;
    await down.close();
    const verifier = createCallerVerifier({ jwksUrl: url, jwksTimeoutMs: 1000 });
    const err = await refusal(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), rsa)}`));
    expect([err.status, err.code]).toEqual([503, "auth_unavailable"]);
  });
});

describe("daemon key", () => {
  const key = "daemon-key-0123456789-0123456789-0123456789";
  const verifier = hsVerifier({ daemonKey: { key, tenantId: "acme" } });

  it("binds a valid key to its tenant as operator", async () => {
    await expect(verifier.verify(undefined, key)).resolves.toMatchObject({
      kind: "daemon",
      tenantId: "acme",
      role: "operator",
      roles: ["operator"],
    });
  });

  it("rejects a wrong key, a key when none is configured, and two credentials at once", async () => {
    expect((await refusal(verifier.verify(undefined, `${key}x`))).code).toBe("invalid_daemon_key");
    expect((await refusal(verifier.verify(undefined, "short"))).code).toBe("invalid_daemon_key");
    expect((await refusal(hsVerifier().verify(undefined, key))).code).toBe("invalid_daemon_key");
    const both = await refusal(verifier.verify(`Bearer ${await hsToken(withExp(BASE))}`, key));
    expect(both.code).toBe("ambiguous_credentials");
  });

  it("works as the only scheme, refusing bearer tokens", async () => {
    const daemonOnly = createCallerVerifier({ daemonKey: { key, tenantId: "acme" } });
    await expect(daemonOnly.verify(undefined, key)).resolves.toMatchObject({ tenantId: "acme" });
    expect((await refusal(daemonOnly.verify(`Bearer ${await hsToken(withExp(BASE))}`))).code).toBe("invalid_token");
  });

  it("refuses a short daemon key or a missing tenant at construction", () => {
    expect(() => hsVerifier({ daemonKey: { key: "short", tenantId: "acme" } })).toThrow(/CLASPER_DAEMON_KEY/);
    expect(() => hsVerifier({ daemonKey: { key, tenantId: "" } })).toThrow(/CLASPER_DAEMON_TENANT/);
  });
});
