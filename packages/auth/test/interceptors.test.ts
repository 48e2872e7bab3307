import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type Client, type ConnectRouter } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { describe, expect, it, vi } from "vitest";
// The generated Health service serves as a small real service; @clasper/proto does not export it.
import {
  Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
} from "../../proto/src/gen/grpc/health/v1/health_pb.js";
import {
  buildPrincipal,
  CONTEXT_HEADER,
  createContextSigner,
  createContextVerifier,
  currentCallContext,
  forwardContextInterceptor,
  principalOf,
  runAsService,
  serverAuthInterceptor,
  type CallContext,
  type ProcedureRule,
  type Role,
} from "../src/index.js";
import { rejectionOf, SECRET } from "./helpers.js";

const RULES: Record<string, ProcedureRule> = {
  "/grpc.health.v1.Health/Check": "authenticated",
  "/grpc.health.v1.Health/Watch": "authenticated",
  "/grpc.health.v1.Health/List": "trace:view_payloads",
};
const signer = createContextSigner(SECRET);
const verifier = createContextVerifier(SECRET);
const SERVING = HealthCheckResponse_ServingStatus.SERVING;

interface Seen {
  principal: ReturnType<typeof principalOf>;
  scoped: CallContext | undefined;
}

/** A Health service behind the auth interceptor that records who it saw. */
function healthService(seen: Seen[], options: { rules?: Record<string, ProcedureRule>; onCheck?: () => Promise<void> } = {}) {
  const routes = (router: ConnectRouter) =>
    router.service(Health, {
      async check(_req, ctx) {
        seen.push({ principal: principalOf(ctx), scoped: currentCallContext() });
        await options.onCheck?.();
        return create(HealthCheckResponseSchema, { status: SERVING });
      },
      async *watch(_req, ctx) {
        await Promise.resolve();
        seen.push({ principal: principalOf(ctx), scoped: currentCallContext() });
        yield create(HealthCheckResponseSchema, { status: SERVING });
        await new Promise((resolve) => setTimeout(resolve, 5));
        seen.push({ principal: principalOf(ctx), scoped: currentCallContext() });
        yield create(HealthCheckResponseSchema, { status: SERVING });
      },
      list() {
        return create(HealthListResponseSchema, {});
      },
    });
  return createRouterTransport(routes, {
    router: { interceptors: [serverAuthInterceptor({ verifier, signer, rules: options.rules ?? RULES })] },
  });
}

const userContext = (role: Role = "operator") =>
  signer.sign({
    principal: buildPrincipal({ kind: "user", tenantId: "t1", userId: "u1", roles: [role] }),
    requestId: "req-1",
  });

const rejection = (promise: Promise<unknown>) => rejectionOf(promise, ConnectError);

describe("serverAuthInterceptor", () => {
  it("refuses calls without or with a bad context as Unauthenticated", async () => {
    const seen: Seen[] = [];
    const client = createClient(Health, healthService(seen));
    expect((await rejection(client.check({}))).code).toBe(Code.Unauthenticated);
    const bad = await rejection(client.check({}, { headers: { [CONTEXT_HEADER]: "garbage" } }));
    expect(bad.code).toBe(Code.Unauthenticated);
    expect(seen).toHaveLength(0);
  });

  it("exposes the verified caller to the handler through context values and the async scope", async () => {
    const seen: Seen[] = [];
    const client = createClient(Health, healthService(seen));
    const token = await userContext();
    const res = await client.check({}, { headers: { [CONTEXT_HEADER]: token } });
    expect(res.status).toBe(SERVING);
    expect(seen[0]?.principal).toMatchObject({ tenantId: "t1", userId: "u1", role: "operator" });
    expect(seen[0]?.scoped).toMatchObject({ requestId: "req-1", token });
    expect(currentCallContext()).toBeUndefined();
  });

  it("keeps the scope across the reads of a server stream", async () => {
    const seen: Seen[] = [];
    const client = createClient(Health, healthService(seen));
    const headers = { [CONTEXT_HEADER]: await userContext() };
    const statuses = [];
    for await (const res of client.watch({}, { headers })) statuses.push(res.status);
    expect(statuses).toEqual([SERVING, SERVING]);
    expect(seen.map((s) => s.scoped?.requestId)).toEqual(["req-1", "req-1"]);
  });

  it("authorizes the procedure: permission rules and deny by default", async () => {
    const client = createClient(Health, healthService([]));
    const asOperator = { headers: { [CONTEXT_HEADER]: await userContext("operator") } };
    const asAdmin = { headers: { [CONTEXT_HEADER]: await userContext("admin") } };
    const denied = await rejection(client.list({}, asOperator));
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(denied.rawMessage).toMatch(/trace:view_payloads/);
    await expect(client.list({}, asAdmin)).resolves.toBeDefined();

    const unlisted = createClient(Health, healthService([], { rules: {} }));
    expect((await rejection(unlisted.check({}, asAdmin))).code).toBe(Code.PermissionDenied);
  });
});

describe("forwardContextInterceptor", () => {
  /** Service A's Check calls service B's Check through a forwarding client. */
  function twoHops() {
    const seenByB: Seen[] = [];
    const peer: Client<typeof Health> = createClient(
      Health,
      createRouterTransport(
        (router) =>
          router.service(Health, {
            check(_req, ctx) {
              seenByB.push({ principal: principalOf(ctx), scoped: currentCallContext() });
              return create(HealthCheckResponseSchema, { status: SERVING });
            },
          }),
        {
          router: { interceptors: [serverAuthInterceptor({ verifier, rules: RULES })] },
          transport: { interceptors: [forwardContextInterceptor()] },
        },
      ),
    );
    const seenByA: Seen[] = [];
    const serviceA = createClient(
      Health,
      healthService(seenByA, {
        onCheck: async () => {
          await peer.check({});
        },
      }),
    );
    return { serviceA, peer, seenByA, seenByB };
  }

  it("carries the original caller across two hops", async () => {
    const { serviceA, seenByA, seenByB } = twoHops();
    await serviceA.check({}, { headers: { [CONTEXT_HEADER]: await userContext("release_manager") } });
    expect(seenByB).toHaveLength(1);
    expect(seenByB[0]?.principal).toEqual(seenByA[0]?.principal);
    expect(seenByB[0]?.principal).toMatchObject({ tenantId: "t1", userId: "u1", role: "release_manager" });
    expect(seenByB[0]?.scoped?.requestId).toBe("req-1");
  });

  it("refuses to call a peer anonymously when there is no current call", async () => {
    const { peer, seenByB } = twoHops();
    const err = await rejection(peer.check({}));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/no caller context/);
    expect(seenByB).toHaveLength(0);
  });

  it("lets background work call peers as a tenant-bound service principal", async () => {
    const { peer, seenByB } = twoHops();
    await runAsService(signer, "t9", () => peer.check({}), { service: "retention" });
    expect(seenByB[0]?.principal).toMatchObject({
      kind: "service",
      tenantId: "t9",
      userId: "service:retention",
      role: "admin",
    });
  });

  it("re-signs a context that is about to expire when the service holds a signer", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
      const { peer, seenByB } = twoHops();
      let original = "";
      await runAsService(signer, "t1", async () => {
        original = currentCallContext()?.token ?? "";
        // 55 s into a 60 s context: inside the 10 s refresh window, still valid.
        vi.setSystemTime(new Date("2030-01-01T00:00:55Z"));
        await peer.check({});
      });
      const forwarded = seenByB[0]?.scoped?.token ?? "";
      expect(decodeJwt(forwarded).exp).toBe((decodeJwt(original).exp ?? 0) + 55);
      expect(seenByB[0]?.principal.userId).toBe("service:clasper");
    } finally {
      vi.useRealTimers();
    }
  });
});
