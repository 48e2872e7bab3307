import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AuthError, buildPrincipal, createCallerVerifier, createContextSigner, createContextVerifier } from "../src/index.js";
import { asymmetricToken, hsToken, rejectionOf, SECRET, signingKey, startJwksServer, withExp, type SigningKey } from "./helpers.js";

// Counting real signature checks is the only way to see the cache work from outside.
const verifySpy = vi.hoisted(() => ({ calls: 0 }));
vi.mock("jose", async (importOriginal) => {
  const jose = await importOriginal<typeof import("jose")>();
  return {
    ...jose,
    jwtVerify: (...args: Parameters<typeof jose.jwtVerify>) => {
      verifySpy.calls += 1;
      return jose.jwtVerify(...args);
    },
  };
});

const principal = buildPrincipal({ kind: "user", tenantId: "t1", userId: "u1", roles: ["viewer"] });

describe("context verification cache", () => {
  it("checks a token's signature once per hop-reuse and evicts the least recently used", async () => {
    const signer = createContextSigner(SECRET);
    const verifier = createContextVerifier(SECRET, { cacheSize: 2 });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((requestId) => signer.sign({ principal, requestId })));
    const start = verifySpy.calls;
    await verifier.verify(a!);
    await verifier.verify(a!);
    await verifier.verify(a!);
    expect(verifySpy.calls - start).toBe(1);
    await verifier.verify(b!);
    await verifier.verify(a!); // a is now the most recently used
    await verifier.verify(c!); // evicts b
    expect(verifySpy.calls - start).toBe(3);
    await verifier.verify(a!);
    expect(verifySpy.calls - start).toBe(3);
    await verifier.verify(b!);
    expect(verifySpy.calls - start).toBe(4);
  });
});

const BASE = { tenant_id: "t1", user_id: "u1", roles: ["operator"] };
const refusal = (promise: Promise<unknown>) => rejectionOf(promise, AuthError);
const checks = async (run: () => Promise<unknown>) => {
  const before = verifySpy.calls;
  await run();
  return verifySpy.calls - before;
};

afterEach(() => {
  vi.useRealTimers();
});

describe("verified caller tokens (shared secret)", () => {
  it("checks a token's signature once, and hands each request its own principal", async () => {
    const verifier = createCallerVerifier({ hsSecret: SECRET });
    const header = `Bearer ${await hsToken(withExp(BASE))}`;
    let first: Awaited<ReturnType<typeof verifier.verify>> | undefined;
    const n = await checks(async () => {
      first = await verifier.verify(header);
      first.roles.push("admin");
      first.tenantId = "t2";
      await verifier.verify(header);
      await verifier.verify(header);
    });
    expect(n).toBe(1);
    await expect(verifier.verify(header)).resolves.toMatchObject({ tenantId: "t1", roles: ["operator"], role: "operator" });
  });

  it("never answers from the cache at or past exp; jose then decides, clock tolerance included", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
    const verifier = createCallerVerifier({ hsSecret: SECRET });
    const exp = Date.parse("2030-01-01T00:01:00Z") / 1000;
    const header = `Bearer ${await hsToken({ ...BASE, exp })}`;
    expect(await checks(() => verifier.verify(header))).toBe(1);
    vi.setSystemTime(new Date("2030-01-01T00:00:59Z"));
    expect(await checks(() => verifier.verify(header))).toBe(0);
    // Past exp but within the 30 s tolerance: accepted, by a full check each time.
    vi.setSystemTime(new Date("2030-01-01T00:01:10Z"));
    expect(await checks(() => verifier.verify(header))).toBe(1);
    expect(await checks(() => verifier.verify(header))).toBe(1);
    vi.setSystemTime(new Date("2030-01-01T00:01:31Z"));
    expect((await refusal(verifier.verify(header))).code).toBe("token_expired");
  });

  it("never remembers a refusal, and a token differing in one character is checked in full", async () => {
    const verifier = createCallerVerifier({ hsSecret: SECRET });
    const token = await hsToken(withExp(BASE));
    await verifier.verify(`Bearer ${token}`);
    // The signature's first character: all six of its bits are signature bits (the last
    // character's low bits are padding, which base64url decoding drops).
    const signatureStart = token.lastIndexOf(".") + 1;
    const swapped = token[signatureStart] === "A" ? "B" : "A";
    const tampered = `Bearer ${token.slice(0, signatureStart)}${swapped}${token.slice(signatureStart + 1)}`;
    expect(await checks(async () => {
      expect((await refusal(verifier.verify(tampered))).code).toBe("invalid_token");
      expect((await refusal(verifier.verify(tampered))).code).toBe("invalid_token");
    })).toBe(2);
    const noTenant = `Bearer ${await hsToken(withExp({ user_id: "u1" }))}`;
    expect(await checks(async () => {
      expect((await refusal(verifier.verify(noTenant))).code).toBe("missing_claim");
      expect((await refusal(verifier.verify(noTenant))).code).toBe("missing_claim");
    })).toBe(2);
  });

  it("can be turned off", async () => {
    const verifier = createCallerVerifier({ hsSecret: SECRET, verifiedTokenCacheSize: 0 });
    const header = `Bearer ${await hsToken(withExp(BASE))}`;
    expect(await checks(async () => {
      await verifier.verify(header);
      await verifier.verify(header);
    })).toBe(2);
  });
});

describe("verified caller tokens (JWKS)", () => {
  let k1: SigningKey;
  let k2: SigningKey;
  let jwks: Awaited<ReturnType<typeof startJwksServer>>;

  beforeAll(async () => {
    [k1, k2] = await Promise.all([signingKey("k1"), signingKey("k2")]);
    jwks = await startJwksServer([k1]);
  });
  afterAll(() => jwks.close());

  it("stops accepting a cached token once the refreshed key set no longer has its key", async () => {
    jwks.setKeys([k1]);
    const verifier = createCallerVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 0 });
    const fromK1 = `Bearer ${await asymmetricToken(withExp(BASE), k1)}`;
    expect(await checks(() => verifier.verify(fromK1))).toBe(1);
    expect(await checks(() => verifier.verify(fromK1))).toBe(0);
    // The identity provider rotates k1 out; a token naming k2 makes jose refetch the key set.
    jwks.setKeys([k2]);
    await verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), k2)}`);
    const err = await refusal(verifier.verify(fromK1));
    expect([err.code, err.message]).toEqual(["invalid_token", "token is signed by an unknown key"]);
  });

  it("re-checks a cached token once after the key set was refetched, then answers it from the cache again", async () => {
    jwks.setKeys([k1, k2]);
    const verifier = createCallerVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 0 });
    const fromK1 = `Bearer ${await asymmetricToken(withExp(BASE), k1)}`;
    await verifier.verify(fromK1);
    const unknownKid = await signingKey("k9");
    await refusal(verifier.verify(`Bearer ${await asymmetricToken(withExp(BASE), unknownKid)}`)); // refetch
    expect(await checks(() => verifier.verify(fromK1))).toBe(1);
    expect(await checks(() => verifier.verify(fromK1))).toBe(0);
  });

  it("refetches a stale key set before answering from the cache", async () => {
    jwks.setKeys([k1]);
    vi.useFakeTimers({ toFake: ["Date"] });
    const verifier = createCallerVerifier({ jwksUrl: jwks.url });
    const fromK1 = `Bearer ${await asymmetricToken(withExp(BASE, 3600), k1)}`;
    await verifier.verify(fromK1);
    jwks.setKeys([k2]);
    // jose keeps its copy of the key set for 10 minutes; within them it would still accept k1.
    vi.setSystemTime(Date.now() + 9 * 60_000);
    await expect(verifier.verify(fromK1)).resolves.toMatchObject({ tenantId: "t1" });
    const hits = jwks.hits();
    vi.setSystemTime(Date.now() + 2 * 60_000);
    expect((await refusal(verifier.verify(fromK1))).code).toBe("invalid_token");
    expect(jwks.hits()).toBeGreaterThan(hits);
  });
});
