import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Metrics } from "@clasper/telemetry";
import { healthRoutes, type HealthRegistry } from "./health.js";
import { listen, type DualHandler, type Listener } from "./listener.js";
import { probeHandler } from "./probes.js";

/** Combines several route registrations into one. */
export function combineRoutes(...all: ((router: ConnectRouter) => void)[]): (router: ConnectRouter) => void {
  return (router) => {
    for (const routes of all) routes(router);
  };
}

/**
 * Serves Connect/gRPC (h2c and HTTP/1.1) plus /healthz, /readyz and /metrics on one port, for a
 * service process in distributed mode.
 */
export async function serveConnect(options: {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  health: HealthRegistry;
  metrics: Metrics;
  port: number;
  host: string;
}): Promise<Listener> {
  const probes = probeHandler(options.health, options.metrics);
  const handler = connectNodeAdapter({
    routes: combineRoutes(options.routes, healthRoutes(options.health)),
    interceptors: options.interceptors,
    // Request bodies of internal RPCs are bounded too; span batches are the largest (issue: ingest limits).
    readMaxBytes: 16 * 1024 * 1024,
    fallback: (req, res) => void probes(req, res),
  });
  return listen(handler as DualHandler, { port: options.port, host: options.host });
}
