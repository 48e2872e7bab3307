import { currentCallContext, runAsService, type ContextSigner } from "@clasper/auth";
import {
  createIngestSpanProcessor,
  type IngestSpanProcessor,
  type Metrics,
  type SpanDeliveryStats,
  type Telemetry,
} from "@clasper/telemetry";
import type { Logger } from "pino";
import type { PeerClients } from "./peers.js";

export interface SpanDeliveryOptions {
  readonly telemetry: Telemetry;
  readonly peers: Pick<PeerClients, "trace">;
  /** Signs the service context each batch is sent under, for the batch's tenant. */
  readonly signer: ContextSigner;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** How long shutdown keeps retrying undelivered spans; default 10 s. */
  readonly flushTimeoutMs?: number;
}

export interface SpanDelivery {
  readonly processor: IngestSpanProcessor;
  stats(): SpanDeliveryStats;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Ships this process's execution spans to the trace service. The tenant is the verified caller
 * of the code that started the span; each batch goes out as a service principal of that tenant,
 * which is where IngestSpans takes the tenant from. Telemetry's shutdown also flushes it.
 */
export function startSpanDelivery(options: SpanDeliveryOptions): SpanDelivery {
  const processor = createIngestSpanProcessor({
    tenantOf: () => currentCallContext()?.principal.tenantId,
    send: async (tenantId, spans, signal) => {
      await runAsService(options.signer, tenantId, () => options.peers.trace.ingestSpans({ spans }, { signal }), {
        service: "span-delivery",
      });
    },
    metrics: options.metrics,
    logger: options.logger?.child({ component: "span-delivery" }),
    flushTimeoutMs: options.flushTimeoutMs,
  });
  options.telemetry.addSpanProcessor(processor);
  return {
    processor,
    stats: () => processor.stats(),
    flush: () => processor.forceFlush(),
    shutdown: () => processor.shutdown(),
  };
}
