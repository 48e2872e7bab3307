import { createRouterTransport, type ConnectRouter, type Interceptor, type Transport } from "@connectrpc/connect";
import { healthRoutes, type HealthRegistry } from "./health.js";
import type { ServiceName } from "./names.js";
import { combineRoutes } from "./serve.js";

/**
 * One process, several services: each service gets an in-memory Connect transport that runs the
 * full server interceptor stack, so a call between services behaves exactly as over the network
 * (auth, validation, tracing), minus the socket.
 */
export function inMemoryTransport(options: {
  routes: (router: ConnectRouter) => void;
  health: HealthRegistry;
  serverInterceptors: Interceptor[];
  clientInterceptors: Interceptor[];
}): Transport {
  return createRouterTransport(combineRoutes(options.routes, healthRoutes(options.health)), {
    router: { interceptors: options.serverInterceptors, readMaxBytes: 16 * 1024 * 1024 },
    transport: { interceptors: options.clientInterceptors },
  });
}

export type TransportTable = Partial<Record<ServiceName, Transport>>;
