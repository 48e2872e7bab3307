import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import type { Interceptor } from "@connectrpc/connect";
import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from "@opentelemetry/semantic-conventions";
import { markSpanFailed } from "./spans.js";
import { observeCall, rpcName, type CallOutcome, type RpcRequest } from "./rpc.js";
import type { Telemetry } from "./telemetry.js";

/*
 * RPC attribute names from the (incubating) RPC semantic conventions. The semconv package asks
 * users to copy incubating names rather than import them, since they may change between releases.
 */
export const ATTR_RPC_SYSTEM = "rpc.system";
export const ATTR_RPC_SERVICE = "rpc.service";
export const ATTR_RPC_METHOD = "rpc.method";
export const ATTR_RPC_CONNECT_RPC_ERROR_CODE = "rpc.connect_rpc.error_code";
const RPC_SYSTEM_CONNECT = "connect_rpc";

const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

const headerSetter: TextMapSetter<Headers> = {
  set: (headers, key, value) => headers.set(key, value),
};

function rpcAttributes(req: RpcRequest): Attributes {
  return {
    [ATTR_RPC_SYSTEM]: RPC_SYSTEM_CONNECT,
    [ATTR_RPC_SERVICE]: req.service.typeName,
    [ATTR_RPC_METHOD]: req.method.name,
  };
}

/** The peer a client calls, so a trace view can tell the hops apart without the URL. */
function serverAttributes(url: string): Attributes {
  try {
    const parsed = new URL(url);
    const port = parsed.port ? Number(parsed.port) : parsed.protocol === "https:" ? 443 : 80;
    return { [ATTR_SERVER_ADDRESS]: parsed.hostname, [ATTR_SERVER_PORT]: port };
  } catch {
    // In-memory transports use URLs that need not parse; the span is still useful without them.
    return {};
  }
}

/**
 * The RPC and peer attributes of a client span, per request URL. A client calls a fixed set of
 * URLs (one per method and peer), so they are parsed once; the map is bounded all the same.
 */
const clientAttributeCache = new Map<string, Attributes>();
function clientAttributes(req: RpcRequest): Attributes {
  let cached = clientAttributeCache.get(req.url);
  if (!cached) {
    cached = { ...rpcAttributes(req), ...serverAttributes(req.url) };
    if (clientAttributeCache.size >= 1024) clientAttributeCache.clear();
    clientAttributeCache.set(req.url, cached);
  }
  // A copy: the SDK may keep the object it is given.
  return { ...cached };
}

function endRpcSpan(span: Span, outcome: CallOutcome): void {
  if (outcome.code !== "ok") {
    span.setAttribute(ATTR_RPC_CONNECT_RPC_ERROR_CODE, outcome.code);
    markSpanFailed(span, outcome.error);
  }
  span.end();
}

/** Runs the call in `ctx` so the handler, logs and outgoing calls all see the span. */
function traced(span: Span, ctx: Context, call: () => ReturnType<ReturnType<Interceptor>>) {
  return observeCall(call, (outcome) => endRpcSpan(span, outcome), (fn) => context.with(ctx, fn));
}

/**
 * SERVER span per incoming RPC, child of the caller's `traceparent` if any. The parent comes
 * only from the wire (never the ambient context), so in-process transports behave like the network.
 */
export function serverTracingInterceptor(telemetry: Telemetry): Interceptor {
  return (next) => (req) => {
    const parent = telemetry.propagator.extract(ROOT_CONTEXT, req.header, headerGetter);
    const span = telemetry.tracer.startSpan(
      rpcName(req),
      { kind: SpanKind.SERVER, attributes: rpcAttributes(req) },
      parent,
    );
    return traced(span, trace.setSpan(parent, span), () => next(req));
  };
}

/** CLIENT span per outgoing RPC, child of the active span; its context travels as `traceparent`. */
export function clientTracingInterceptor(telemetry: Telemetry): Interceptor {
  return (next) => (req) => {
    const parent = context.active();
    const span = telemetry.tracer.startSpan(
      rpcName(req),
      { kind: SpanKind.CLIENT, attributes: clientAttributes(req) },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    telemetry.propagator.inject(ctx, req.header, headerSetter);
    return traced(span, ctx, () => next(req));
  };
}
