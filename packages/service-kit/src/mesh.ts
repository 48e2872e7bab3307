import { createRouterTransport, type ConnectRouter, type Interceptor, type Transport } from "@connectrpc/connect";
import { createDirectTransport } from "./direct-transport.js";
import { healthRoutes, type HealthRegistry } from "./health.js";
import type { ServiceName } from "./names.js";
import { combineRoutes } from "./serve.js";

export interface InMemoryTransportOptions {
  routes: (router: ConnectRouter) => void;
  health: HealthRegistry;
  serverInterceptors: Interceptor[];
  clientInterceptors: Interceptor[];
}

/**
 * One process, several services: each service gets an in-memory transport that runs the client
 * stack, then the full server interceptor stack and the handler, so a call between services
 * behaves as over the network (auth, validation, tracing, errors with details), minus the socket
 * and the serialization (see createDirectTransport).
 */
export function inMemoryTransport(options: InMemoryTransportOptions): Transport {
  return createDirectTransport({
    routes: combineRoutes(options.routes, healthRoutes(options.health)),
    serverInterceptors: options.serverInterceptors,
    clientInterceptors: options.clientInterceptors,
  });
}

/**
 * The same mesh through Connect's router transport: the whole Connect protocol in memory
 * (serialize, envelope, HTTP semantics). Slower; tests use it as the reference the direct
 * transport must behave like.
 */
export function inMemoryRouterTransport(options: InMemoryTransportOptions): Transport {
  return createRouterTransport(combineRoutes(options.routes, healthRoutes(options.health)), {
    router: { interceptors: options.serverInterceptors, readMaxBytes: 16 * 1024 * 1024 },
    transport: { interceptors: options.clientInterceptors },
  });
}

export type TransportTable = Partial<Record<ServiceName, Transport>>;
