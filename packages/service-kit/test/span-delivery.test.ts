import { describe, expect, it } from "vitest";
import type { ConnectRouter } from "@connectrpc/connect";
import { createContextSigner, createContextVerifier, principalOf, runAsService } from "@clasper/auth";
import { TraceService } from "@clasper/proto";
import { ATTR, createLogger, createMetrics, startTelemetry } from "@clasper/telemetry";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { clientInterceptors, createHealthRegistry, createPeerClients, inMemoryTransport, serverInterceptors, startSpanDelivery } from "../src/index.js";

describe("startSpanDelivery", () => {
  it("ships execution spans to IngestSpans as a service principal of the span's tenant, validated, outside the caller's trace", async () => {
    const secret = "x".repeat(40);
    const signer = createContextSigner(secret);
    const telemetry = startTelemetry({ serviceName: "clasper-runtime", env: {} });
    const logger = createLogger({ serviceName: "clasper-runtime", level: "silent" });
    const metrics = createMetrics({ serviceName: "clasper-runtime" });
    const ended: ReadableSpan[] = [];
    telemetry.addSpanProcessor({ onStart() {}, onEnd: (s) => void ended.push(s), forceFlush: async () => {}, shutdown: async () => {} });
    const seen: { tenantId: string; kind: string; userId: string; names: string[] }[] = [];
    const routes = (router: ConnectRouter) =>
      router.service(TraceService, {
        ingestSpans(req, ctx) {
          const p = principalOf(ctx);
          seen.push({ tenantId: p.tenantId, kind: p.kind, userId: p.userId, names: req.spans.map((s) => s.name) });
          return { accepted: req.spans.length };
        },
      });
    const transport = inMemoryTransport({
      routes,
      health: createHealthRegistry(["trace"], async () => {}),
      serverInterceptors: serverInterceptors({ telemetry, logger, metrics, contextVerifier: createContextVerifier(secret), contextSigner: signer }),
      clientInterceptors: clientInterceptors({ telemetry, forwardContext: true }),
    });
    const peers = createPeerClients(() => transport);
    const delivery = startSpanDelivery({ telemetry, peers, signer, metrics, logger });

    await runAsService(signer, "acme", async () => {
      await telemetry.tracer.startActiveSpan("outer", async (outer) => {
        telemetry.tracer.startSpan("chat gpt", { attributes: { [ATTR.operationName]: "chat", "clasper.tenant.id": "globex" } }).end();
        outer.end();
      });
    });
    await delivery.flush();
    expect(seen).toEqual([{ tenantId: "acme", kind: "service", userId: "service:span-delivery", names: ["chat gpt"] }]);
    expect(delivery.stats()).toEqual({ queued: 0, sent: 1, dropped: 0, failedAttempts: 0 });
    const outer = ended.find((s) => s.name === "outer")!;
    const ingest = ended.filter((s) => s.name.endsWith("IngestSpans"));
    // The delivery RPC joins no caller's trace: no client span, and the server span is a root.
    expect(ingest.length).toBeGreaterThan(0);
    expect(ingest.every((s) => s.spanContext().traceId !== outer.spanContext().traceId && !s.parentSpanContext)).toBe(true);
    expect(await metrics.metricsText()).toContain("clasper_span_delivery_sent_total");
    await telemetry.shutdown();
  });
});
