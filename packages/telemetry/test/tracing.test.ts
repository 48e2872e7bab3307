import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, createRouterTransport, type Interceptor, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ProxyTracerProvider, SpanKind, SpanStatusCode, trace, type SpanContext } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { clientTracingInterceptor, serverTracingInterceptor, withSpan } from "../src/index.js";
import { Health, healthRoutes, recordingTelemetry, spanNamed } from "./health-service.js";

const CHECK = "grpc.health.v1.Health/Check";
const WATCH = "grpc.health.v1.Health/Watch";

/** The same assertions run over an in-memory router and over a real HTTP/2 connection. */
interface Hop {
  transport: Transport;
  /** Finished spans since the last test started. */
  spans: () => ReadableSpan[];
  reset: () => void;
  seen: { handlerSpan?: SpanContext | undefined };
  withOuterSpan: <T>(fn: () => Promise<T>) => Promise<T>;
}

function expectParentChild(client: ReadableSpan, server: ReadableSpan): void {
  expect(server.spanContext().traceId).toBe(client.spanContext().traceId);
  expect(server.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
}

function describeHop(title: string, setup: () => Promise<{ hop: Hop; close: () => Promise<void> }>) {
  describe(title, () => {
    let hop: Hop;
    let close: () => Promise<void>;
    beforeAll(async () => ({ hop, close } = await setup()));
    afterAll(async () => close());
    beforeEach(() => hop.reset());

    it("makes the client span the parent of the server span, and runs the handler in the server span", async () => {
      const client = createClient(Health, hop.transport);
      await hop.withOuterSpan(() => client.check({ service: "" }));

      const spans = hop.spans();
      const outer = spanNamed(spans, "outer", SpanKind.INTERNAL);
      const clientSpan = spanNamed(spans, CHECK, SpanKind.CLIENT);
      const serverSpan = spanNamed(spans, CHECK, SpanKind.SERVER);
      expect(clientSpan.parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
      expectParentChild(clientSpan, serverSpan);
      expect(hop.seen.handlerSpan?.spanId).toBe(serverSpan.spanContext().spanId);
      expect(serverSpan.attributes).toMatchObject({
        "rpc.system": "connect_rpc",
        "rpc.service": "grpc.health.v1.Health",
        "rpc.method": "Check",
      });
      expect(serverSpan.status.code).toBe(SpanStatusCode.UNSET);
    });

    it("records the Connect code and error status on both sides of a failed call", async () => {
      const client = createClient(Health, hop.transport);
      await expect(client.check({ service: "missing" })).rejects.toMatchObject({ code: Code.NotFound });

      const spans = hop.spans();
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = spanNamed(spans, CHECK, kind);
        expect(span.attributes["rpc.connect_rpc.error_code"]).toBe("not_found");
        expect(span.attributes["error.type"]).toBe("not_found");
        expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message: "no such service" });
      }
    });

    it("records an unexpected error as internal with the exception on the server span", async () => {
      const client = createClient(Health, hop.transport);
      await expect(client.check({ service: "boom" })).rejects.toBeInstanceOf(ConnectError);

      const server = spanNamed(hop.spans(), CHECK, SpanKind.SERVER);
      expect(server.attributes["rpc.connect_rpc.error_code"]).toBe("internal");
      expect(server.events.map((e) => e.name)).toContain("exception");
      expect(server.status.code).toBe(SpanStatusCode.ERROR);
    });

    it("keeps a server-streaming span open until the stream ends, with the handler inside it", async () => {
      const client = createClient(Health, hop.transport);
      const received: number[] = [];
      for await (const res of client.watch({ service: "" })) {
        received.push(res.status);
      }
      expect(received).toHaveLength(2);

      const spans = hop.spans();
      const clientSpan = spanNamed(spans, WATCH, SpanKind.CLIENT);
      const serverSpan = spanNamed(spans, WATCH, SpanKind.SERVER);
      expectParentChild(clientSpan, serverSpan);
      expect(hop.seen.handlerSpan?.spanId).toBe(serverSpan.spanContext().spanId);
      // The handler sleeps 20 ms between its messages; a span ended when the handler returned its
      // stream (before the first message) or at the first message would be shorter.
      const durationMs = serverSpan.duration[0] * 1e3 + serverSpan.duration[1] / 1e6;
      expect(durationMs).toBeGreaterThanOrEqual(19);
    });

    it("never registers a global tracer provider", () => {
      const global = trace.getTracerProvider();
      expect(global).toBeInstanceOf(ProxyTracerProvider);
      expect(global.getTracer("probe").startSpan("probe").isRecording()).toBe(false);
    });
  });
}

function interceptorsFor(telemetry: ReturnType<typeof recordingTelemetry>["telemetry"]): {
  server: Interceptor[];
  client: Interceptor[];
} {
  return { server: [serverTracingInterceptor(telemetry)], client: [clientTracingInterceptor(telemetry)] };
}

describeHop("over createRouterTransport", async () => {
  const { telemetry, spans, reset } = recordingTelemetry();
  const seen = {};
  const interceptors = interceptorsFor(telemetry);
  const transport = createRouterTransport(healthRoutes(seen), {
    router: { interceptors: interceptors.server },
    transport: { interceptors: interceptors.client },
  });
  const withOuterSpan = <T>(fn: () => Promise<T>) => withSpan(telemetry.tracer, "outer", {}, fn);
  return { hop: { transport, spans, reset, seen, withOuterSpan }, close: () => telemetry.shutdown() };
});

describeHop("over a real HTTP/2 server", async () => {
  // Separate providers for the two processes a real deployment would have.
  const serverSide = recordingTelemetry("server");
  const clientSide = recordingTelemetry("client");
  const seen = {};
  const server = http2.createServer(
    connectNodeAdapter({ routes: healthRoutes(seen), interceptors: [serverTracingInterceptor(serverSide.telemetry)] }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "2",
    sessionManager,
    interceptors: [clientTracingInterceptor(clientSide.telemetry)],
  });
  const spans = () => [...clientSide.spans(), ...serverSide.spans()];
  const reset = () => [clientSide, serverSide].forEach((side) => side.reset());
  const withOuterSpan = <T>(fn: () => Promise<T>) => withSpan(clientSide.telemetry.tracer, "outer", {}, fn);
  return {
    hop: { transport, spans, reset, seen, withOuterSpan },
    close: async () => {
      sessionManager.abort();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      await Promise.all([serverSide.telemetry.shutdown(), clientSide.telemetry.shutdown()]);
    },
  };
});

describe("withSpan", () => {
  it("ends the span, records the failure and rethrows", async () => {
    const { telemetry, spans } = recordingTelemetry();
    const failure = new Error("nope");
    await expect(withSpan(telemetry.tracer, "work", { "clasper.step": 1 }, () => Promise.reject(failure))).rejects.toBe(failure);
    const [span] = spans();
    expect(span?.name).toBe("work");
    expect(span?.attributes).toMatchObject({ "clasper.step": 1, "error.type": "Error" });
    expect(span?.status).toMatchObject({ code: SpanStatusCode.ERROR, message: "nope" });
    await telemetry.shutdown();
  });
});
