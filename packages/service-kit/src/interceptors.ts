import type { Interceptor } from "@connectrpc/connect";
import { Health } from "@clasper/proto";
import {
  clientTracingInterceptor,
  loggingInterceptor,
  metricsInterceptor,
  serverTracingInterceptor,
  type Metrics,
  type Telemetry,
} from "@clasper/telemetry";
import { CONTEXT_HEADER, forwardContextInterceptor, serverAuthInterceptor, type ContextSigner, type ContextVerifier } from "@clasper/auth";
import type { Logger } from "pino";
import { storeErrorInterceptor } from "./store-errors.js";
import { validationInterceptor } from "./validation.js";

/** Health checks are answered without a caller identity (probes and load balancers have none). */
function exceptHealth(interceptor: Interceptor): Interceptor {
  return (next) => {
    const guarded = interceptor(next);
    return (req) => (req.service.typeName === Health.typeName ? next(req) : guarded(req));
  };
}

/** The one server stack, in the fixed order STYLE.md prescribes: tracing → logging → auth → validation. */
export function serverInterceptors(deps: {
  telemetry: Telemetry;
  logger: Logger;
  metrics: Metrics;
  contextVerifier: ContextVerifier;
  /** Lets long-running handlers (agent executions) re-sign the caller's context before it expires. */
  contextSigner: ContextSigner;
}): Interceptor[] {
  return [
    serverTracingInterceptor(deps.telemetry),
    loggingInterceptor(deps.logger),
    metricsInterceptor(deps.metrics),
    exceptHealth(serverAuthInterceptor({ verifier: deps.contextVerifier, signer: deps.contextSigner })),
    storeErrorInterceptor(),
    validationInterceptor(),
  ];
}

/**
 * A call that already carries a context (the gateway signs one per request) keeps it; any other
 * outbound call forwards the context of the call being served.
 */
function unlessContextSet(interceptor: Interceptor): Interceptor {
  return (next) => {
    const forwarding = interceptor(next);
    return (req) => (req.header.has(CONTEXT_HEADER) ? next(req) : forwarding(req));
  };
}

/**
 * Client stack for calls to a service: propagate the trace and forward the caller's signed
 * context. A standalone gateway, which always signs its own, passes forwardContext: false.
 */
export function clientInterceptors(deps: { telemetry: Telemetry; forwardContext: boolean }): Interceptor[] {
  const stack = [clientTracingInterceptor(deps.telemetry)];
  if (deps.forwardContext) stack.push(exceptHealth(unlessContextSet(forwardContextInterceptor())));
  return stack;
}
