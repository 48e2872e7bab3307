import type { Interceptor } from "@connectrpc/connect";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import { observeCall } from "./rpc.js";

export interface MetricsOptions {
  /** Added as the `service_name` label to every series, so federated scrapes stay apart. */
  readonly serviceName: string;
}

export interface Metrics {
  /** This process's own registry; prom-client's global one is never used. */
  readonly registry: Registry;
  /** Observe from the HTTP layer (gateway, /healthz); `route` is the template, not the raw path. */
  readonly httpServerDuration: Histogram<"method" | "route" | "status_code">;
  /** Observed by metricsInterceptor. */
  readonly rpcServerDuration: Histogram<"service" | "method" | "code">;
  /** Content-Type for the /metrics response. */
  readonly contentType: string;
  /** The text exposition of every series, for GET /metrics. */
  metricsText(): Promise<string>;
}

/**
 * Seconds. Prometheus' defaults stop at 10 s, but a streamed agent run easily lasts minutes,
 * so the upper buckets reach 5 minutes.
 */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createMetrics(options: MetricsOptions): Metrics {
  // An own registry: several services can share a process (tests, single-binary mode)
  // without colliding on metric names, and libraries cannot leak series into our /metrics.
  const registry = new Registry();
  registry.setDefaultLabels({ service_name: options.serviceName });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpServerDuration: new Histogram({
      name: "http_server_request_duration_seconds",
      help: "Duration of HTTP requests handled by this server, in seconds.",
      labelNames: ["method", "route", "status_code"] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    rpcServerDuration: new Histogram({
      name: "rpc_server_duration_seconds",
      help: "Duration of Connect/gRPC calls handled by this server until the response ends, in seconds.",
      labelNames: ["service", "method", "code"] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    contentType: registry.contentType,
    metricsText: () => registry.metrics(),
  };
}

/** Observes each RPC's duration, for streams until the last message; labelled with the Connect code. */
export function metricsInterceptor(metrics: Metrics): Interceptor {
  return (next) => (req) => {
    const stop = metrics.rpcServerDuration.startTimer({ service: req.service.typeName, method: req.method.name });
    return observeCall(() => next(req), (outcome) => stop({ code: outcome.code }));
  };
}
