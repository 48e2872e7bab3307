import { decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { buildPrincipal, createContextSigner } from "../src/index.js";
import { signHs256 } from "../src/hs256.js";
import { SECRET } from "./helpers.js";

const key = new TextEncoder().encode(SECRET);

afterEach(() => {
  vi.useRealTimers();
});

/*
 * The internal context is signed with node:crypto instead of jose (WebCrypto). It must be the very
 * token jose would produce, so jose (and any other JWT library) checks it exactly as before.
 */
describe("HS256 signing through node:crypto", () => {
  const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
    ["plain claims", { alg: "HS256" }, { sub: "u1", iat: 1_900_000_000, exp: 1_900_000_060 }],
    ["typ and nested claims", { alg: "HS256", typ: "clasper-context+jwt" }, { clasper: { kind: "user", roles: ["viewer", "admin"] }, request_id: "r-1", exp: 1_900_000_060 }],
    ["non-ASCII text and characters JSON escapes", { alg: "HS256", kid: "k\u00e9y" }, { name: "Zo\u00eb \u{1f600} \"quoted\" \\ \n\u2028", exp: 1_900_000_060 }],
    ["numbers", { alg: "HS256" }, { a: 0.1, b: -0, c: 1e21, exp: 1_900_000_060.5 }],
  ];

  it.each(cases)("produces jose's exact bytes: %s", async (_name, header, claims) => {
    const ours = signHs256(header, claims, key);
    const jose = await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
    expect(ours).toBe(jose);
  });

  it("refuses what it does not implement rather than sign something else", () => {
    expect(() => signHs256({ alg: "HS512" }, {}, key)).toThrow(/HS256/);
    expect(() => signHs256({ alg: "HS256", b64: false, crit: ["b64"] }, {}, key)).toThrow(/crit/);
    expect(() => signHs256({ alg: "HS256" }, { exp: Number.POSITIVE_INFINITY }, key)).toThrow(/exp/);
  });

  it("signs the internal context exactly as jose's SignJWT with the same claims, and jose verifies it", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
    const principal = buildPrincipal({ kind: "user", tenantId: "t1", userId: "u1", workspaceId: "w1", roles: ["operator"], allowedTenants: ["t2"] });
    const token = await createContextSigner(SECRET).sign({ principal, requestId: "req-1" });
    const claim = { kind: "user", tenant_id: "t1", user_id: "u1", roles: ["operator"], workspace_id: "w1" };
    const jose = await new SignJWT({ clasper: claim, request_id: "req-1" })
      .setProtectedHeader({ alg: "HS256", typ: "clasper-context+jwt" })
      .setIssuer("clasper-gateway")
      .setAudience("clasper-internal")
      .setSubject("u1")
      .setIssuedAt()
      .setExpirationTime("60s")
      .sign(key);
    expect(token).toBe(jose);
    expect(decodeProtectedHeader(token)).toEqual({ alg: "HS256", typ: "clasper-context+jwt" });
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], issuer: "clasper-gateway", audience: "clasper-internal", typ: "clasper-context+jwt" });
    expect(payload).toMatchObject({ clasper: claim, request_id: "req-1", exp: Date.parse("2030-01-01T00:01:00Z") / 1000 });
  });
});
