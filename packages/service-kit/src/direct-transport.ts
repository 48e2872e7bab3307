import { clone, create, isMessage, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import {
  appendHeaders,
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  createHandlerContext,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  createMethodUrl,
  getAbortSignalReason,
  invokeUnaryImplementation,
  mergeNonProtocolHeaders,
  runStreamingCall,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";
import {
  contentTypeStreamProto,
  contentTypeUnaryJson,
  contentTypeUnaryProto,
  endStreamFromJson,
  endStreamToJson,
  errorFromJsonBytes,
  errorToJsonBytes,
  requestHeader,
} from "@connectrpc/connect/protocol-connect";

/**
 * A Connect `Transport` that calls a service implementation in this process directly: the client
 * interceptors, then a handler context and the server interceptors exactly as Connect's own
 * handlers build them, then the handler; no serialization, envelopes or universal request/response
 * in between (Connect's router transport spends ~130 µs of CPU per call on those).
 *
 * What the caller and the handler observe is kept as over the network:
 * - messages are cloned at the boundary, so neither side can change the other's copy, unless the
 *   caller hands its messages over (HAND_OVER_MESSAGES);
 * - request headers carry the Connect protocol headers (content-type, timeout, user agent);
 * - errors are re-encoded the way the Connect protocol carries them (code, message, ErrorInfo and
 *   other details, metadata from headers and trailers; the server-side cause stays on the server);
 * - the caller's abort signal and deadline reach the handler's `ctx.signal`, and a call rejects as
 *   soon as its signal aborts, even if the handler ignores it (a unary call keeps one lifetime for
 *   both sides, UnaryCall, instead of Connect's controllers and timers per side);
 * - a server stream resolves once its first message (or error, or end) is there, response headers
 *   as set by then; trailers arrive with the end of the stream.
 */
export interface DirectTransportOptions {
  routes: (router: ConnectRouter) => void;
  /** Run around every call on the serving side, outermost first. */
  serverInterceptors: Interceptor[];
  /** Run around every call on the calling side, outermost first. */
  clientInterceptors: Interceptor[];
}

/**
 * Set in a call's context values by a caller that gives its request message(s) away and only
 * reads the response before dropping it: it never touches a request again once the call has
 * started, never changes a response, and is done with one by its next await (the gateway builds
 * a request per HTTP request and renders the answer to JSON at once). The transport then passes
 * the messages on without cloning them: copying a 50-trace listing cost ~0.8 ms of CPU. Nothing
 * a handler can do is observable to such a caller that a network call would not show as well,
 * given what every Connect handler already keeps to: a message it returned or yielded is not
 * changed afterwards (over the network it is serialized after the handler returns). A handler
 * may keep or change the request it was given, and keep what it returned; the caller does not
 * look at either. Other transports ignore the value (they serialize anyway).
 */
export const HAND_OVER_MESSAGES = createContextKey(false, { description: "caller hands its messages over (no copies)" });

/** Base of the request URL interceptors see; it names no host, like the router transport's. */
const BASE_URL = "https://in-memory";

type AnySpec = MethodImplSpec;
/** A handler context plus the abort Connect's handlers call when the call is over. */
type ServerContext = ReturnType<typeof createHandlerContext>;
type Step = IteratorResult<unknown> | { error: unknown };

export function createDirectTransport(options: DirectTransportOptions): Transport {
  const specs = collectSpecs(options.routes);
  const { serverInterceptors, clientInterceptors } = options;
  const specOf = (method: DescMethod): AnySpec => {
    const spec = specs.get(procedureKey(method));
    if (!spec) throw new ConnectError(`no handler registered for /${procedureKey(method)}`, Code.Unimplemented);
    return spec;
  };

  return {
    unary(method, signal, timeoutMs, header, message, contextValues) {
      const timeout = normalizeTimeout(timeoutMs);
      const call = new UnaryCall(signal, timeout);
      const envelope = callEnvelope(method, timeout, header, contextValues);
      const req: UnaryRequest = {
        stream: false,
        ...envelope,
        message: isMessage(message, method.input) ? message : create(method.input, message as never),
        get signal() {
          return call.signal("client");
        },
      };
      const next = applyInterceptors((r: UnaryRequest) => serveUnary(specOf(r.method), r, call, serverInterceptors), clientInterceptors);
      return call.run(() => next(req)) as Promise<never>;
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      const timeout = normalizeTimeout(timeoutMs);
      return runStreamingCall({
        interceptors: clientInterceptors,
        signal,
        timeoutMs: timeout,
        req: { stream: true, ...callEnvelope(method, timeout, header, contextValues), message: input },
        next: (req) => serveStream(specOf(req.method), req, timeout, serverInterceptors) as Promise<never>,
      }) as Promise<never>;
    },
  };
}

/** The parts of a client request that do not depend on unary vs streaming. */
function callEnvelope<M extends DescMethod>(method: M, timeout: number | undefined, header: Parameters<Transport["unary"]>[3], contextValues: ContextValues | undefined) {
  return {
    service: method.parent,
    method,
    requestMethod: "POST",
    url: createMethodUrl(BASE_URL, method),
    header: requestHeader(method.methodKind, true, timeout, header, true),
    contextValues: contextValues ?? createContextValues(),
  };
}

function procedureKey(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/** As Connect's transports: undefined or ≤ 0 means no deadline. */
function normalizeTimeout(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
}

/** Runs `routes` against a router that records each method's implementation instead of building HTTP handlers. */
function collectSpecs(routes: (router: ConnectRouter) => void): Map<string, AnySpec> {
  const specs = new Map<string, AnySpec>();
  const refuseOptions = (options: object | undefined) => {
    // Per-service handler options (own interceptors, limits) would be silently ignored here.
    if (options && Object.keys(options).length > 0) {
      throw new Error("createDirectTransport: per-service router options are not supported");
    }
  };
  const router = {
    handlers: [],
    service(service, implementation, options) {
      refuseOptions(options);
      const spec = createServiceImplSpec(service, implementation);
      for (const method of Object.values(spec.methods)) specs.set(procedureKey(method.method), method);
      return router;
    },
    rpc(method, impl, options) {
      refuseOptions(options);
      specs.set(procedureKey(method), createMethodImplSpec(method, impl) as AnySpec);
      return router;
    },
  } as ConnectRouter;
  routes(router);
  return specs;
}

/** The serving side's context, built as Connect's handler for the Connect protocol builds it. */
function handlerContext(spec: AnySpec, req: UnaryRequest | StreamRequest, timeoutMs: number | undefined, contentType: string): ServerContext {
  return createHandlerContext({
    ...spec,
    service: spec.method.parent,
    requestMethod: "POST",
    protocolName: "connect",
    timeoutMs,
    requestSignal: req.signal,
    requestHeader: req.header,
    url: req.url,
    responseHeader: { "content-type": contentType },
  });
}

/**
 * The serving side of a unary call, as Connect's handler and invokeUnaryImplementation build it
 * (own copy of the request headers, fresh response headers, trailers and context values), minus
 * what only matters when nobody looks: ctx.signal is created when first read (see UnaryCall).
 */
async function serveUnary(spec: AnySpec, clientReq: UnaryRequest, call: UnaryCall, interceptors: Interceptor[]): Promise<UnaryResponse> {
  const responseHeader = new Headers({ "content-type": contentTypeUnaryProto });
  const responseTrailer = new Headers();
  const timeoutMs = call.remainingMs;
  const answer = (message: unknown): UnaryResponse => ({
    stream: false,
    service: spec.method.parent,
    method: spec.method as never,
    header: responseHeader,
    trailer: responseTrailer,
    message: message as never,
  });
  const invoke = async (req: UnaryRequest): Promise<UnaryResponse> => {
    const ctx: HandlerContext = {
      method: spec.method,
      service: req.service,
      requestMethod: req.requestMethod,
      protocolName: "connect",
      url: req.url,
      timeoutMs,
      requestHeader: req.header,
      responseHeader,
      responseTrailer,
      values: req.contextValues,
      get signal() {
        return req.signal;
      },
    };
    const output = await (spec.impl as (input: unknown, ctx: HandlerContext) => unknown)(req.message, ctx);
    return answer(isMessage(output, spec.method.output) ? output : create(spec.method.output, output as never));
  };
  const copy = copierOf(clientReq);
  try {
    const serverReq: UnaryRequest = {
      stream: false,
      service: spec.method.parent,
      method: spec.method as never,
      requestMethod: "POST",
      url: clientReq.url,
      header: new Headers(clientReq.header),
      contextValues: createContextValues(),
      message: copy(spec.method.input, clientReq.message as MessageShape<DescMessage>) as never,
      get signal() {
        return call.signal("server");
      },
    };
    const res = await applyInterceptors(invoke, interceptors)(serverReq);
    copyHeaders(res.header, responseHeader);
    copyHeaders(res.trailer, responseTrailer);
    call.serverDone();
    return answer(copy(spec.method.output, res.message as MessageShape<DescMessage>));
  } catch (e) {
    call.serverDone(e);
    throw unaryErrorAsReceived(e, responseHeader, responseTrailer);
  }
}

type Copy = <T extends DescMessage>(schema: T, message: MessageShape<T>) => MessageShape<T>;
const passOn: Copy = (_schema, message) => message;

/** How messages cross this call's boundary: cloned, or passed on when the caller hands them over. */
function copierOf(req: UnaryRequest | StreamRequest): Copy {
  return req.contextValues.get(HAND_OVER_MESSAGES) ? passOn : clone;
}

/** The reason Connect's deadline signals abort with. */
function deadlineExceeded(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}

/** As Connect's invokeUnaryImplementation: headers an interceptor replaced become the response's. */
function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  from.forEach((value, key) => to.set(key, value));
}

/** As Connect's applyInterceptors: the first interceptor is the outermost. */
function applyInterceptors<T extends (req: never) => Promise<unknown>>(next: T, interceptors: Interceptor[]): T {
  let fn = next as unknown as ReturnType<Interceptor>;
  for (let i = interceptors.length - 1; i >= 0; i--) fn = interceptors[i]!(fn);
  return fn as unknown as T;
}

type Side = "client" | "server";

/**
 * The lifetime of one unary call, for both sides: what Connect spreads over five AbortControllers,
 * two deadline timers and half a dozen listeners per call (and a DOMException for each
 * reasonless abort(): ~60 µs of CPU per call together) is one caller listener and one timer here.
 *
 * - The caller's abort rejects the call at once with Canceled (its reason kept), the deadline
 *   with DeadlineExceeded, as runUnaryCall does; both abort the handler's ctx.signal with the same
 *   reason as Connect's linked controllers would.
 * - Each side's signal (the client request's, the handler's ctx.signal) is created when first
 *   read: one that nobody read cannot be observed, so it needs neither creating nor aborting. A
 *   signal that was read is aborted when the call ends, as Connect does (the handler's with the
 *   error it threw, if any).
 */
class UnaryCall {
  private readonly controllers: Partial<Record<Side, AbortController>> = {};
  private abortedWith: { reason: unknown } | undefined;
  private ended = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private reject: ((error: ConnectError) => void) | undefined;
  private readonly deadlineAt: number | undefined;
  readonly remainingMs: () => number | undefined;

  constructor(
    private readonly callerSignal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) {
    const deadlineAt = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    this.deadlineAt = deadlineAt;
    this.remainingMs = deadlineAt === undefined ? () => undefined : () => deadlineAt - Date.now();
  }

  signal(side: Side): AbortSignal {
    let controller = this.controllers[side];
    if (!controller) {
      controller = this.controllers[side] = new AbortController();
      if (this.abortedWith) controller.abort(this.abortedWith.reason);
      else if (this.ended) controller.abort();
    }
    return controller.signal;
  }

  /**
   * Runs the call; settles with it, or rejects as soon as the caller aborts or the deadline passes.
   * As runUnaryCall: the call starts even when the caller's signal is already aborted (the handler
   * then sees an aborted ctx.signal), and a client interceptor that throws synchronously throws
   * out of the transport as it is.
   */
  run<T>(call: () => Promise<T>): Promise<T> {
    const callerSignal = this.callerSignal;
    if (callerSignal?.aborted) this.abort(getAbortSignalReason(callerSignal));
    else if (this.deadlineAt !== undefined && this.deadlineAt <= Date.now()) this.abort(deadlineExceeded());
    const result = call();
    if (this.abortedWith) {
      const reason = this.abortedWith.reason;
      result.then(() => this.finish(), () => this.finish());
      return Promise.reject(ConnectError.from(reason, Code.Canceled));
    }
    return new Promise<T>((resolve, reject) => {
      this.reject = reject;
      callerSignal?.addEventListener("abort", this.onCallerAbort);
      if (this.deadlineAt !== undefined) this.timer = setTimeout(this.onDeadline, this.deadlineAt - Date.now());
      result.then(
        (value) => {
          this.finish();
          resolve(value);
        },
        (e: unknown) => {
          const error = this.abortedWith ? ConnectError.from(this.abortedWith.reason, Code.Canceled) : ConnectError.from(e);
          this.finish(error);
          reject(error);
        },
      );
    });
  }

  /** The handler is done (with `error` if it failed): its signal ends as Connect's context.abort(). */
  serverDone(error?: unknown): void {
    const server = this.controllers.server;
    if (server && !server.signal.aborted) server.abort(error);
  }

  private readonly onCallerAbort = (): void => {
    this.reject?.(this.abort(getAbortSignalReason(this.callerSignal!), Code.Canceled));
    this.finish();
  };

  private readonly onDeadline = (): void => {
    this.timer = undefined;
    this.reject?.(this.abort(deadlineExceeded()));
    this.finish();
  };

  /** Aborts both sides with `reason`; returns what the caller is rejected with. */
  private abort(reason: unknown, code?: Code): ConnectError {
    if (!this.abortedWith) {
      this.abortedWith = { reason };
      for (const controller of Object.values(this.controllers)) if (!controller.signal.aborted) controller.abort(reason);
    }
    return ConnectError.from(this.abortedWith.reason, code);
  }

  private finish(error?: ConnectError): void {
    if (this.ended) return;
    this.ended = true;
    this.reject = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.callerSignal?.removeEventListener("abort", this.onCallerAbort);
    this.serverDone();
    const client = this.controllers.client;
    if (client && !client.signal.aborted) client.abort(error);
  }
}

async function serveStream(
  spec: AnySpec,
  req: StreamRequest,
  timeoutMs: number | undefined,
  interceptors: Interceptor[],
): Promise<StreamResponse> {
  const context = handlerContext(spec, req, timeoutMs, contentTypeStreamProto);
  const copy = copierOf(req);
  const input = copyEach(copy, spec.method.input, req.message as AsyncIterable<MessageShape<DescMessage>>);
  const output = transformInvokeImplementation(spec as never, context, interceptors)(input as never)[Symbol.asyncIterator]();
  const first = await nextStep(req.signal, output);
  const header = new Headers(context.responseHeader);
  const trailer = new Headers();
  return {
    stream: true,
    service: spec.method.parent,
    method: spec.method as never,
    header,
    trailer,
    message: relay(first, output, { spec, context, header, trailer, signal: req.signal, copy }) as AsyncIterable<never>,
  };
}

/** The next output message, or the error that ended the stream; rejects only when the caller's signal aborts. */
async function nextStep(signal: AbortSignal, output: AsyncIterator<unknown>): Promise<Step> {
  const step = output.next().then((r): Step => r, (error: unknown): Step => ({ error }));
  return raceSignal(signal, step);
}

async function* relay(
  first: Step,
  output: AsyncIterator<unknown>,
  call: { spec: AnySpec; context: ServerContext; header: Headers; trailer: Headers; signal: AbortSignal; copy: Copy },
): AsyncGenerator<unknown, void, undefined> {
  let step = first;
  let failure: unknown;
  try {
    for (;;) {
      if ("error" in step) {
        failure = step.error;
        throw streamErrorAsReceived(step.error, call.context, call.header);
      }
      if (step.done) break;
      yield call.copy(call.spec.method.output, step.value as MessageShape<DescMessage>);
      step = await nextStep(call.signal, output);
    }
    call.context.responseTrailer.forEach((value, key) => call.trailer.set(key, value));
  } finally {
    call.context.abort(failure);
  }
}

async function* copyEach<T extends DescMessage>(copy: Copy, schema: T, source: AsyncIterable<MessageShape<T>>): AsyncGenerator<MessageShape<T>> {
  for await (const message of source) yield copy(schema, message);
}

/** What the handler threw, as a Connect client receives it from a unary response. */
function unaryErrorAsReceived(e: unknown, responseHeader: Headers, responseTrailer: Headers): ConnectError {
  const error = serverError(e);
  responseHeader.set("content-type", contentTypeUnaryJson);
  if (!error.isWireError) mergeNonProtocolHeaders(responseHeader, error.metadata);
  return errorFromJsonBytes(
    errorToJsonBytes(error, undefined),
    appendHeaders(responseHeader, responseTrailer),
    new ConnectError(error.rawMessage, error.code),
  );
}

/** What the handler threw, as a Connect client receives it from a stream's end message. */
function streamErrorAsReceived(e: unknown, context: ServerContext, header: Headers): ConnectError {
  const end = endStreamFromJson(JSON.stringify(endStreamToJson(context.responseTrailer, serverError(e), undefined)));
  const error = end.error ?? new ConnectError("invalid end stream", Code.Unknown);
  header.forEach((value, key) => error.metadata.append(key, value));
  return error;
}

/** As Connect's handlers: anything but a ConnectError reaches the client as `internal`, its message hidden. */
function serverError(e: unknown): ConnectError {
  return e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts (as the router transport does). */
function raceSignal<T>(signal: AbortSignal, promise: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(getAbortSignalReason(signal));
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(getAbortSignalReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([aborted, promise]).finally(() => signal.removeEventListener("abort", onAbort!));
}
