import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJwt, exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from "jose";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import { runClasper, spawnClasper } from "./support/processes.js";
import { callGateway, signCallerToken, startOneProcess, TEST_SECRET, type TestSystem } from "./support/system.js";

const OTHER_SECRET = "another-secret-that-is-also-long-enough-9876543210";

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** An unsigned token: `alg: none`, a valid-looking payload, empty signature. */
function algNoneToken(): string {
  const now = Math.floor(Date.now() / 1000);
  return `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ tenant_id: "tenant-a", user_id: "user-1", roles: ["admin"], iat: now, exp: now + 300 })}.`;
}

/**
 * Calls of the trace service's RPC server stack so far (the in-process services share the
 * gateway's metrics registry): a refused caller must leave this unchanged.
 */
async function traceRpcCount(sys: TestSystem): Promise<number> {
  const { body } = await sys.call("GET", "/metrics");
  let total = 0;
  for (const match of (body as string).matchAll(/^rpc_server_duration_seconds_count\{([^}]*)\} (\d+)$/gm)) {
    if (match[1]!.includes('service="clasper.trace.v1.TraceService"')) total += Number(match[2]);
  }
  return total;
}

/** A 401 in the documented shape, and nothing reached the trace service. */
async function expectRefused(sys: TestSystem, headers: Record<string, string>, expected: { code: string; message: string | RegExp }) {
  const before = await traceRpcCount(sys);
  const res = await sys.call("POST", "/retention/policy", { headers, body: { retention_days: 1 } });
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toBe("Bearer");
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(Object.keys(res.body.error).sort()).toEqual(["code", "message"]);
  expect(res.body.error.code).toBe(expected.code);
  if (typeof expected.message === "string") expect(res.body.error.message).toBe(expected.message);
  else expect(res.body.error.message).toMatch(expected.message);
  const get = await sys.call("GET", "/retention/policy", { headers });
  expect(get.status).toBe(401);
  expect(get.body.error.code).toBe(expected.code);
  expect(await traceRpcCount(sys)).toBe(before);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("gateway auth: shared HS256 secret", () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startOneProcess();
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it("accepts a valid token and counts the call at the trace service (the refusal check can fail)", async () => {
    const before = await traceRpcCount(sys);
    const res = await sys.call("GET", "/retention/policy", { token: await sys.token() });
    expect(res.status).toBe(200);
    expect(res.body.policy.retention_days).toBe(90);
    expect(await traceRpcCount(sys)).toBe(before + 1);
  });

  it.each<[string, () => Promise<Record<string, string>>, string, string | RegExp]>([
    ["no Authorization header", async () => ({}), "missing_token", "missing Authorization header"],
    ["a Basic header", async () => ({ authorization: "Basic dXNlcjpwYXNz" }), "invalid_token", "Authorization header must be 'Bearer <token>'"],
    ["'Bearer' alone", async () => ({ authorization: "Bearer" }), "invalid_token", "Authorization header must be 'Bearer <token>'"],
    ["'Bearer ' and spaces", async () => ({ authorization: "Bearer    " }), "invalid_token", "Authorization header must be 'Bearer <token>'"],
    ["a token that is not a JWT", async () => bearer("not-a-jwt"), "invalid_token", "token is malformed"],
    ["a token signed with another secret", async () => bearer(await signCallerToken({}, { secret: OTHER_SECRET })), "invalid_token", "token signature is invalid"],
    ["an expired token", async () => bearer(await signCallerToken({}, { expiresIn: Math.floor(Date.now() / 1000) - 3600 })), "token_expired", "token has expired"],
    ["an alg:none token", async () => bearer(algNoneToken()), "invalid_token", "token algorithm is not accepted"],
    ["an HS512 token with the right secret", async () => bearer(await signCallerToken({}, { alg: "HS512" })), "invalid_token", "token algorithm is not accepted"],
    ["a token without tenant_id", async () => bearer(await signCallerToken({ tenant_id: undefined })), "missing_claim", "token has no tenant_id claim"],
    ["a token without user_id or sub", async () => bearer(await signCallerToken({ user_id: undefined })), "missing_claim", "token has no user_id or sub claim"],
    [
      "a token without exp",
      async () => bearer(await new SignJWT({ tenant_id: "tenant-a", user_id: "u", roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(TEST_SECRET))),
      "missing_claim",
      "token has no exp claim",
    ],
  ])("refuses %s with 401 before any service", async (_name, headers, code, message) => {
    await expectRefused(sys, await headers(), { code, message });
  });

  it("left no trace of the refused writes", async () => {
    const res = await sys.call("GET", "/retention/policy", { token: await sys.token() });
    expect(res.body.policy).toMatchObject({ retention_days: 90, is_default: true });
  });

  it.each(["/health", "/openapi.json", "/metrics", "/api/version"])("serves %s without a token, even with a bad one", async (route) => {
    const plain = await sys.call("GET", route);
    expect(plain.status).toBe(200);
    const withBad = await sys.call("GET", route, { headers: { authorization: "Bearer garbage" } });
    expect(withBad.status).toBe(200);
  });
});

describe("gateway auth: issuer and audience", () => {
  let sys: TestSystem;
  const ISSUER = "https://idp.example.test/";
  const AUDIENCE = "clasper-api";
  beforeAll(async () => {
    sys = await startOneProcess({ CLASPER_AUTH_ISSUER: ISSUER, CLASPER_AUTH_AUDIENCE: AUDIENCE });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const token = (claims: Record<string, unknown>) => signCallerToken(claims);

  it("accepts a token with the configured iss and aud", async () => {
    const res = await sys.call("GET", "/retention/policy", { token: await token({ iss: ISSUER, aud: AUDIENCE }) });
    expect(res.status).toBe(200);
    // An aud list containing ours is fine too.
    const list = await sys.call("GET", "/retention/policy", { token: await token({ iss: ISSUER, aud: ["other", AUDIENCE] }) });
    expect(list.status).toBe(200);
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ["a wrong issuer", { iss: "https://evil.example.test/", aud: AUDIENCE }, "invalid_token", "token iss claim is not accepted"],
    ["no issuer", { aud: AUDIENCE }, "missing_claim", "token has no iss claim"],
    ["a wrong audience", { iss: ISSUER, aud: "someone-else" }, "invalid_token", "token aud claim is not accepted"],
    ["no audience", { iss: ISSUER }, "missing_claim", "token has no aud claim"],
  ])("refuses %s", async (_name, claims, code, message) => {
    await expectRefused(sys, bearer(await token(claims)), { code, message });
  });
});

describe("gateway auth: JWKS (RS256)", () => {
  let sys: TestSystem;
  let jwksServer: http.Server;
  let jwksFetches = 0;
  let privateKey: CryptoKey;
  let publicPem: string;
  const KID = "test-key-1";

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    privateKey = pair.privateKey as CryptoKey;
    publicPem = await exportSPKI(pair.publicKey);
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: "RS256", use: "sig" };
    jwksServer = http.createServer((req, res) => {
      if (req.url === "/.well-known/jwks.json") {
        jwksFetches++;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ keys: [jwk] }));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    const { port } = jwksServer.address() as AddressInfo;
    sys = await startOneProcess({
      CLASPER_AUTH_JWT_SECRET: "", // empty counts as unset: the JWKS is the only trust root
      CLASPER_AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    });
  });
  afterAll(async () => {
    await sys?.stop();
    if (jwksServer) await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
  });

  const rs256 = (claims: Record<string, unknown> = {}, key: CryptoKey = privateKey, kid = KID) =>
    new SignJWT({ tenant_id: "jwks-tenant", user_id: "jwks-user", roles: ["admin"], ...claims })
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(key);

  it("accepts an RS256 token signed by the key the JWKS publishes", async () => {
    const res = await sys.call("GET", "/retention/policy", { token: await rs256() });
    expect(res.status).toBe(200);
    expect(res.body.policy).toMatchObject({ retention_days: 90, is_default: true });
    expect(jwksFetches).toBeGreaterThanOrEqual(1);
    const set = await sys.call("POST", "/retention/policy", { token: await rs256(), body: { retention_days: 21 } });
    expect(set.status).toBe(200);
    expect(set.body.policy.retention_days).toBe(21);
  });

  it("refuses HS256 tokens: signed with the public key's bytes (algorithm confusion) or with a shared secret", async () => {
    const confused = await new SignJWT({ tenant_id: "jwks-tenant", user_id: "jwks-user", roles: ["admin"] })
      .setProtectedHeader({ alg: "HS256", kid: KID })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(publicPem));
    await expectRefused(sys, bearer(confused), { code: "invalid_token", message: "token algorithm is not accepted" });
    await expectRefused(sys, bearer(await signCallerToken()), { code: "invalid_token", message: "token algorithm is not accepted" });
  });

  it("refuses an RS256 token from another key under the same kid, an unknown kid, and alg:none", async () => {
    const intruder = (await generateKeyPair("RS256")).privateKey as CryptoKey;
    await expectRefused(sys, bearer(await rs256({}, intruder)), { code: "invalid_token", message: "token signature is invalid" });
    await expectRefused(sys, bearer(await rs256({}, intruder, "unknown-kid")), { code: "invalid_token", message: "token is signed by an unknown key" });
    await expectRefused(sys, bearer(algNoneToken()), { code: "invalid_token", message: "token algorithm is not accepted" });
  });

  it("still requires tenant_id and an unexpired token", async () => {
    await expectRefused(sys, bearer(await rs256({ tenant_id: undefined })), { code: "missing_claim", message: "token has no tenant_id claim" });
    const expired = await new SignJWT({ tenant_id: "jwks-tenant", user_id: "jwks-user" })
      .setProtectedHeader({ alg: "RS256", kid: KID })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(privateKey);
    await expectRefused(sys, bearer(expired), { code: "token_expired", message: "token has expired" });
  });
});

describe("gateway auth: start-up (clasper serve)", () => {
  const backend = testBackendFromEnv();
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "clasper-auth-cli-"));
  });
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const baseEnv = (dir: string) => ({ LOG_LEVEL: "silent", CLASPER_HOST: "127.0.0.1", CLASPER_PORT: "0", CLASPER_DATA_DIR: dir });

  it("refuses a CLASPER_AUTH_JWT_SECRET shorter than 32 bytes with exit code 2", async () => {
    const dir = path.join(dataDir, "short");
    const result = await runClasper(["serve"], { ...baseEnv(dir), NODE_ENV: "test", CLASPER_AUTH_JWT_SECRET: "only-31-bytes-long-secret-value" });
    expect(result.stderr).toContain("CLASPER_AUTH_JWT_SECRET");
    expect(result.stderr).toContain("at least 32 bytes");
    expect(result.code).toBe(2);
  });

  it("refuses to start in production without caller authentication, creating nothing", async () => {
    const dir = path.join(dataDir, "production");
    const result = await runClasper(["serve"], { ...baseEnv(dir), NODE_ENV: "production" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("CLASPER_AUTH_JWT_SECRET");
    expect(result.stdout).not.toContain("Development token");
    await expect(readdir(dir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("prints a working development token when nothing is configured in development", async () => {
    const dir = path.join(dataDir, "dev");
    let database: FreshDatabase | undefined;
    if (backend === "postgres") database = await freshDatabase("clasper");
    const proc = spawnClasper("clasper serve (dev)", ["serve"], {
      ...baseEnv(dir),
      NODE_ENV: "development",
      ...(database?.url ? { DATABASE_URL: database.url } : {}),
    });
    try {
      const [, url, token] = await proc.waitForStdout(/listening on (http:\/\/127\.0\.0\.1:\d+) [\s\S]*?Development token[^\n]*\n\n\s*(\S+)\n/, 40_000);
      expect(decodeJwt(token!)).toMatchObject({ tenant_id: "dev", roles: ["admin"] });
      const ok = await callGateway(url!, "GET", "/retention/policy", { token: token! });
      expect(ok.status).toBe(200);
      expect(ok.body.policy).toMatchObject({ retention_days: 90, is_default: true });
      // Development mode still checks tokens: one signed with any other secret is refused.
      const other = await callGateway(url!, "GET", "/retention/policy", { token: await signCallerToken({ tenant_id: "dev" }) });
      expect(other.status).toBe(401);
      expect(other.body.error.code).toBe("invalid_token");
      // The generated secret is kept private in the data directory.
      expect((await stat(path.join(dir, "auth-secret"))).mode & 0o777).toBe(0o600);
      expect(await proc.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await proc.stop();
      await database?.drop();
    }
  });
});
