import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createContextValues, createRouterTransport, type ConnectRouter, type Interceptor, type Transport } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { buildPrincipal, createContextSigner, createContextVerifier, principalOf, CONTEXT_HEADER } from "@clasper/auth";
import { clasperError, errorInfoOf } from "@clasper/core";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
  TraceService,
} from "@clasper/proto";
import { createLogger, createMetrics, startTelemetry } from "@clasper/telemetry";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import {
  clientInterceptors,
  createDirectTransport,
  createHealthRegistry,
  createPeerClients,
  HAND_OVER_MESSAGES,
  inMemoryRouterTransport,
  inMemoryTransport,
  serverInterceptors,
  type InMemoryTransportOptions,
} from "../src/index.js";

/*
 * The direct transport must be indistinguishable from Connect's router transport (the whole
 * Connect protocol in memory) for everything a caller or a handler can observe. Every case runs
 * against both, so a difference shows up as one of the pair failing.
 */
type TransportKind = (routes: (router: ConnectRouter) => void, server: Interceptor[], client: Interceptor[]) => Transport;
const TRANSPORTS: [string, TransportKind][] = [
  ["direct", (routes, server, client) => createDirectTransport({ routes, serverInterceptors: server, clientInterceptors: client })],
  ["router", (routes, server, client) => createRouterTransport(routes, { router: { interceptors: server }, transport: { interceptors: client } })],
];
const MESHES = [
  ["direct", inMemoryTransport],
  ["router", inMemoryRouterTransport],
] as const;

const health = createHealthRegistry(["test"], async () => {});
const never = new Promise<never>(() => {});

/** Resolves when `signal` aborts, with its reason. */
const aborted = (signal: AbortSignal) =>
  new Promise<unknown>((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected a rejection");
}

/** A Health service whose handlers the cases supply (Health skips auth, so no context is needed). */
function healthTransport(
  make: TransportKind,
  impl: Parameters<ConnectRouter["service"]>[1],
  stacks: { server?: Interceptor[]; client?: Interceptor[] } = {},
) {
  const routes = (router: ConnectRouter) => {
    router.service(Health, impl as never);
  };
  return createClient(Health, make(routes, stacks.server ?? [], stacks.client ?? []));
}

describe.each(TRANSPORTS)("%s in-memory transport", (_name, make) => {
  it("answers a unary call with the handler's message, neither side sharing the other's copy", async () => {
    const seen: { service: string; header: string | null; timeout: number | undefined }[] = [];
    let kept: { status: Status } | undefined;
    const client = healthTransport(make, {
      check(req, ctx) {
        seen.push({ service: req.service, header: ctx.requestHeader.get("x-test"), timeout: ctx.timeoutMs() });
        req.service = "changed by handler";
        kept = create(HealthCheckResponseSchema, { status: Status.SERVING });
        return kept;
      },
    });
    const request = create(HealthCheckRequestSchema, { service: "svc" });
    const answer = await client.check(request, { headers: { "x-test": "1" } });
    expect(answer.status).toBe(Status.SERVING);
    expect(request.service).toBe("svc");
    answer.status = Status.NOT_SERVING;
    expect(kept!.status).toBe(Status.SERVING);
    expect(seen).toEqual([{ service: "svc", header: "1", timeout: undefined }]);
  });

  it("delivers response headers and trailers", async () => {
    const client = healthTransport(make, {
      check(_req, ctx) {
        ctx.responseHeader.set("x-answer", "42");
        ctx.responseTrailer.set("x-done", "yes");
        return { status: Status.SERVING };
      },
    });
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    await client.check({}, { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
    expect(header?.get("x-answer")).toBe("42");
    expect(trailer?.get("x-done")).toBe("yes");
  });

  it("turns a thrown ConnectError into the same code, message, ErrorInfo and metadata, and hides anything else", async () => {
    const client = healthTransport(make, {
      check(req) {
        if (req.service === "bug") throw new Error("secret internals");
        const err = clasperError(Code.NotFound, "thing not found", { reason: "not_found", field: "thing_id" });
        err.metadata.set("x-why", "gone");
        throw err;
      },
    });
    const expected = await rejection(client.check({ service: "x" }));
    expect(expected.code).toBe(Code.NotFound);
    expect(expected.rawMessage).toBe("thing not found");
    expect(errorInfoOf(expected)).toMatchObject({ code: "not_found", field: "thing_id" });
    expect(expected.metadata.get("x-why")).toBe("gone");
    expect(expected.cause).toBeUndefined();

    const unexpected = await rejection(client.check({ service: "bug" }));
    expect(unexpected.code).toBe(Code.Internal);
    expect(unexpected.rawMessage).toBe("internal error");
    expect(String(unexpected.cause ?? "")).not.toContain("secret");
  });

  it("propagates the caller's abort to the handler and rejects at once with Canceled", async () => {
    const handlerSignals: AbortSignal[] = [];
    const client = healthTransport(make, {
      check(_req, ctx) {
        handlerSignals.push(ctx.signal);
        return never;
      },
    });
    const abort = new AbortController();
    const call = client.check({}, { signal: abort.signal });
    await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    expect((await rejection(call)).code).toBe(Code.Canceled);
    await aborted(handlerSignals[0]!);
    expect(handlerSignals[0]!.aborted).toBe(true);
  });

  it("enforces the caller's timeout on both sides with DeadlineExceeded", async () => {
    const budgets: (number | undefined)[] = [];
    let reason: unknown;
    const client = healthTransport(make, {
      async check(_req, ctx) {
        budgets.push(ctx.timeoutMs());
        reason = await aborted(ctx.signal);
        throw reason;
      },
    });
    const err = await rejection(client.check({}, { timeoutMs: 50 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(budgets[0]).toBeGreaterThan(0);
    expect(budgets[0]).toBeLessThanOrEqual(50);
    expect(ConnectError.from(reason).code).toBe(Code.DeadlineExceeded);
  });

  it("ends the handler's signal when a unary call is over, with the error the handler threw", async () => {
    const signals: AbortSignal[] = [];
    const client = healthTransport(make, {
      check(req, ctx) {
        signals.push(ctx.signal);
        expect(ctx.signal.aborted).toBe(false);
        if (req.service === "fail") throw new ConnectError("no", Code.NotFound);
        return { status: Status.SERVING };
      },
    });
    await client.check({});
    expect(signals[0]!.aborted).toBe(true);
    await rejection(client.check({ service: "fail" }));
    expect(signals[1]!.aborted).toBe(true);
    expect(ConnectError.from(signals[1]!.reason).code).toBe(Code.NotFound);
  });

  it("starts a call whose signal is already aborted, as Connect does: the handler sees it aborted, the caller gets Canceled", async () => {
    const seen: boolean[] = [];
    const client = healthTransport(make, {
      check(_req, ctx) {
        seen.push(ctx.signal.aborted);
        return { status: Status.SERVING };
      },
    });
    const abort = new AbortController();
    abort.abort();
    expect((await rejection(client.check({}, { signal: abort.signal }))).code).toBe(Code.Canceled);
    await new Promise((r) => setTimeout(r, 10));
    expect(seen.every((aborted) => aborted)).toBe(true);
  });

  it("passes on what a client interceptor throws as Connect does, and keeps response headers a server interceptor replaces", async () => {
    const failingLater: Interceptor = () => async () => {
      throw new Error("client side bug");
    };
    const failed = await rejection(healthTransport(make, { check: () => ({ status: Status.SERVING }) }, { client: [failingLater] }).check({}));
    expect([failed.code, failed.rawMessage]).toEqual([Code.Unknown, "client side bug"]);
    const failingAtOnce: Interceptor = () => () => {
      throw new Error("thrown at once");
    };
    const raw = await healthTransport(make, { check: () => ({ status: Status.SERVING }) }, { client: [failingAtOnce] }).check({}).catch((e: unknown) => e);
    expect(raw).toBeInstanceOf(Error);
    expect((raw as Error).message).toBe("thrown at once");

    const replacing: Interceptor = (next) => async (req) => {
      const res = await next(req);
      const header = new Headers(res.header);
      header.set("x-replaced", "yes");
      return { ...res, header };
    };
    let header: Headers | undefined;
    await healthTransport(make, { check: () => ({ status: Status.SERVING }) }, { server: [replacing] }).check({}, { onHeader: (h) => (header = h) });
    expect(header?.get("x-replaced")).toBe("yes");
  });

  it("streams server messages with headers and trailers, and ends the handler's signal with the stream", async () => {
    let handlerSignal: AbortSignal | undefined;
    const client = healthTransport(make, {
      async *watch(req, ctx) {
        handlerSignal = ctx.signal;
        ctx.responseHeader.set("x-stream", "on");
        for (const status of [Status.SERVING, Status.NOT_SERVING, Status.SERVING]) yield { status };
        ctx.responseTrailer.set("x-count", "3");
        expect(req.service).toBe("svc");
      },
    });
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const got: Status[] = [];
    for await (const message of client.watch({ service: "svc" }, { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) })) {
      got.push(message.status);
    }
    expect(got).toEqual([Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
    expect(header?.get("x-stream")).toBe("on");
    expect(trailer?.get("x-count")).toBe("3");
    expect(handlerSignal?.aborted).toBe(true);
  });

  it("ends a stream with the handler's error and its details, after the messages sent before it", async () => {
    const client = healthTransport(make, {
      async *watch() {
        yield { status: Status.SERVING };
        throw clasperError(Code.ResourceExhausted, "too many watchers", { reason: "quota", httpStatus: 429 });
      },
    });
    const got: Status[] = [];
    const err = await rejection(
      (async () => {
        for await (const message of client.watch({})) got.push(message.status);
      })(),
    );
    expect(got).toEqual([Status.SERVING]);
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toBe("too many watchers");
    expect(errorInfoOf(err)).toMatchObject({ code: "quota", httpStatus: 429 });
  });

  it("cancels a stream the caller aborts while the handler waits", async () => {
    let handlerSignal: AbortSignal | undefined;
    const client = healthTransport(make, {
      async *watch(_req, ctx) {
        handlerSignal = ctx.signal;
        yield { status: Status.SERVING };
        await never;
      },
    });
    const abort = new AbortController();
    const got: Status[] = [];
    const err = await rejection(
      (async () => {
        for await (const message of client.watch({}, { signal: abort.signal })) {
          got.push(message.status);
          abort.abort();
        }
      })(),
    );
    expect(got).toEqual([Status.SERVING]);
    expect(err.code).toBe(Code.Canceled);
    expect(handlerSignal?.aborted).toBe(true);
  });

  it("runs the client stack, then the server stack, in order around the handler", async () => {
    const order: string[] = [];
    const tag = (name: string): Interceptor => (next) => async (req) => {
      order.push(`${name} in`);
      const res = await next(req);
      order.push(`${name} out`);
      return res;
    };
    const client = healthTransport(
      make,
      {
        check() {
          order.push("handler");
          return { status: Status.SERVING };
        },
      },
      { client: [tag("c1"), tag("c2")], server: [tag("s1"), tag("s2")] },
    );
    await client.check({});
    expect(order).toEqual(["c1 in", "c2 in", "s1 in", "s2 in", "handler", "s2 out", "s1 out", "c2 out", "c1 out"]);
  });

  it("answers Unimplemented for a method that has no handler", async () => {
    const client = healthTransport(make, {});
    expect((await rejection(client.check({}))).code).toBe(Code.Unimplemented);
  });
});

describe("direct transport, for a caller that hands its messages over", () => {
  const direct = TRANSPORTS[0]![1];
  const handOver = () => ({ contextValues: createContextValues().set(HAND_OVER_MESSAGES, true) });

  it("passes the request and the answer of a unary call on as they are", async () => {
    let received: unknown;
    let returned: unknown;
    const client = healthTransport(direct, {
      check(req) {
        received = req;
        return (returned = create(HealthCheckResponseSchema, { status: Status.SERVING }));
      },
    });
    const request = create(HealthCheckRequestSchema, { service: "svc" });
    const answer = await client.check(request, handOver());
    expect(received).toBe(request);
    expect(answer).toBe(returned);
    // The same transport still copies for every other caller.
    const copied = await client.check(request);
    expect(received).not.toBe(request);
    expect(copied).not.toBe(returned);
  });

  it("passes a stream's messages on as they are", async () => {
    const yielded: unknown[] = [];
    const client = healthTransport(direct, {
      async *watch() {
        for (const status of [Status.SERVING, Status.NOT_SERVING]) {
          const message = create(HealthCheckResponseSchema, { status });
          yielded.push(message);
          yield message;
        }
      },
    });
    const got: unknown[] = [];
    for await (const message of client.watch({ service: "svc" }, handOver())) got.push(message);
    expect(got).toHaveLength(2);
    got.forEach((message, i) => expect(message).toBe(yielded[i]));
  });
});

describe.each(MESHES)("%s mesh with the real interceptor stacks", (_name, make) => {
  const secret = "d".repeat(40);
  const signer = createContextSigner(secret);
  const telemetry = startTelemetry({ serviceName: "clasper-test", env: {} });
  const ended: ReadableSpan[] = [];
  telemetry.addSpanProcessor({ onStart() {}, onEnd: (s) => void ended.push(s), forceFlush: async () => {}, shutdown: async () => {} });
  const logger = createLogger({ serviceName: "clasper-test", level: "silent" });
  const metrics = createMetrics({ serviceName: "clasper-test" });
  const inbound = serverInterceptors({ telemetry, logger, metrics, contextVerifier: createContextVerifier(secret), contextSigner: signer });
  afterAll(() => telemetry.shutdown());

  it("forwards the verified caller across two hops and joins both hops into one trace", async () => {
    const seenByA: { userId: string; retentionDays: number | undefined }[] = [];
    const seenByB: { tenantId: string; userId: string; token: string | null }[] = [];
    const transports: Record<string, Transport> = {};
    const peers = createPeerClients((name) => ({
      unary: (...args) => transports[name]!.unary(...args),
      stream: (...args) => transports[name]!.stream(...args),
    }));
    const outbound = () => clientInterceptors({ telemetry, forwardContext: true });
    // Hop A (registry) calls hop B (trace) from inside its handler, without naming a context.
    transports["registry"] = make({
      routes: (router) =>
        router.service(TraceService, {
          async getRetentionStats(_req, ctx) {
            const policy = await peers.trace.getRetentionPolicy({});
            seenByA.push({ userId: principalOf(ctx).userId, retentionDays: policy.policy?.retentionDays });
            return {};
          },
        }),
      health,
      serverInterceptors: inbound,
      clientInterceptors: outbound(),
    });
    transports["trace"] = make({
      routes: (router) =>
        router.service(TraceService, {
          getRetentionPolicy(_req, ctx) {
            const p = principalOf(ctx);
            seenByB.push({ tenantId: p.tenantId, userId: p.userId, token: ctx.requestHeader.get(CONTEXT_HEADER) });
            return { policy: { retentionDays: 7 } };
          },
        }),
      health,
      serverInterceptors: inbound,
      clientInterceptors: outbound(),
    });
    const principal = buildPrincipal({ kind: "user", tenantId: "acme", userId: "u1", roles: ["operator"] });
    const token = await signer.sign({ principal, requestId: "req-two-hops" });
    const gateway = createClient(TraceService, transports["registry"]!);
    ended.length = 0;
    await gateway.getRetentionStats({}, { headers: { [CONTEXT_HEADER]: token } });
    expect(seenByA).toEqual([{ userId: "u1", retentionDays: 7 }]);
    expect(seenByB).toEqual([{ tenantId: "acme", userId: "u1", token }]);
    const servers = ended.filter((s) => s.kind === 1 /* SERVER */);
    expect(servers.map((s) => s.name).sort()).toEqual(["clasper.trace.v1.TraceService/GetRetentionPolicy", "clasper.trace.v1.TraceService/GetRetentionStats"]);
    expect(new Set(servers.map((s) => s.spanContext().traceId)).size).toBe(1);
  });

  it("refuses a call without a context, and a procedure the caller's role does not allow", async () => {
    const transport = make({
      routes: (router) => router.service(TraceService, { setRetentionPolicy: () => ({}), getRetentionPolicy: () => ({}) }),
      health,
      serverInterceptors: inbound,
      clientInterceptors: clientInterceptors({ telemetry, forwardContext: false }),
    });
    const client = createClient(TraceService, transport);
    const anonymous = await rejection(client.getRetentionPolicy({}));
    expect(anonymous.code).toBe(Code.Unauthenticated);
    expect(errorInfoOf(anonymous)?.code).toBe("missing_token");
    const viewer = buildPrincipal({ kind: "user", tenantId: "acme", userId: "u1", roles: ["viewer"] });
    // A viewer may not even read the policy; setting it needs retention:modify.
    const headers = { [CONTEXT_HEADER]: await signer.sign({ principal: viewer, requestId: "r" }) };
    expect((await rejection(client.setRetentionPolicy({}, { headers }))).code).toBe(Code.PermissionDenied);
  });
});
