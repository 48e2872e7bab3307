import { describe, expect, it, vi } from "vitest";
import { buildPrincipal, createContextSigner, createContextVerifier } from "../src/index.js";
import { SECRET } from "./helpers.js";

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
