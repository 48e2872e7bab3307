import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { unauthenticated } from "@clasper/core";
import { decodeJwt } from "jose";
import { CONTEXT_HEADER, verifierTrustingOwnTokens, type ContextSigner, type ContextVerifier, type InternalContext } from "./context.js";
import { AuthError } from "./errors.js";
import { buildPrincipal, type Principal } from "./principal.js";
import { procedurePermissions } from "./procedure-rules.js";
import { authorizeProcedure, type ProcedureRule } from "./rbac.js";

/** The verified caller of the current RPC, as handlers and peers see it. */
export interface CallContext {
  principal: Principal;
  requestId: string;
  /** The internal context token, forwarded unchanged to peers while it is fresh. */
  token: string;
}

/** Set by serverAuthInterceptor; read it with principalOf(ctx). */
export const callContextKey = createContextKey<CallContext | undefined>(undefined, {
  description: "clasper call context",
});

/** What the async scope carries: the call, plus a signer when this process may re-sign it. */
interface Scope {
  call: CallContext;
  signer: ContextSigner | undefined;
  /** `exp` of call.token in ms, decoded once per token rather than once per peer call. */
  tokenExpiresAtMs?: number;
}

/**
 * Peer clients are created once at start-up, far from the handler, so the forwarding interceptor
 * finds the caller through the async scope rather than through an argument threaded everywhere.
 */
const scopes = new AsyncLocalStorage<Scope>();

export interface ServerAuthOptions {
  verifier: ContextVerifier;
  /**
   * Lets forwardContextInterceptor re-sign a context that is about to expire, for handlers that
   * keep calling peers longer than the 60 s lifetime (agent executions).
   */
  signer?: ContextSigner;
  /** Procedure access rules; defaults to procedurePermissions. */
  rules?: Readonly<Record<string, ProcedureRule>>;
}

/** Verifies the internal context, authorizes the procedure, and exposes the caller to the handler. */
export function serverAuthInterceptor(options: ServerAuthOptions): Interceptor {
  // One process: contexts its own signer minted (the gateway's, runAsService's) are answered from
  // the signer's record instead of a second HMAC pass; see verifierTrustingOwnTokens.
  const verifier = options.signer ? verifierTrustingOwnTokens(options.verifier, options.signer) : options.verifier;
  return (next) => async (req) => {
    const token = req.header.get(CONTEXT_HEADER);
    if (!token) throw unauthenticated(`missing ${CONTEXT_HEADER} header`, "missing_token");
    let verified: InternalContext;
    try {
      verified = await verifier.verify(token);
    } catch (err) {
      throw err instanceof AuthError ? err.toConnectError() : err;
    }
    authorizeProcedure(`/${req.service.typeName}/${req.method.name}`, verified.principal, options.rules ?? procedurePermissions);
    const scope: Scope = { call: { ...verified, token }, signer: options.signer };
    req.contextValues.set(callContextKey, scope.call);
    return scopes.run(scope, async () => {
      const res = await next(req);
      // A server-streaming handler's body runs as the stream is read, after next() returned,
      // so each read re-enters the scope.
      return res.stream ? { ...res, message: withinScope(scope, res.message) } : res;
    });
  };
}

/**
 * For peer clients: sends the current call's context so the peer sees the original caller.
 * With no current call it fails rather than call anonymously; background work uses runAsService.
 */
export function forwardContextInterceptor(options: { refreshWithinSec?: number } = {}): Interceptor {
  const refreshWithinMs = (options.refreshWithinSec ?? 10) * 1000;
  return (next) => async (req) => {
    const scope = scopes.getStore();
    if (!scope) {
      throw unauthenticated(
        "no caller context to forward (call peers from inside a handler or runAsService)",
        "missing_context",
      );
    }
    req.header.set(CONTEXT_HEADER, await freshToken(scope, refreshWithinMs));
    return next(req);
  };
}

async function freshToken(scope: Scope, refreshWithinMs: number): Promise<string> {
  if (!scope.signer) return scope.call.token;
  scope.tokenExpiresAtMs ??= (decodeJwt(scope.call.token).exp ?? 0) * 1000;
  if (scope.tokenExpiresAtMs - Date.now() > refreshWithinMs) return scope.call.token;
  // Same principal and request id, new expiry; later calls in this scope reuse it.
  scope.call.token = await scope.signer.sign({ principal: scope.call.principal, requestId: scope.call.requestId });
  scope.tokenExpiresAtMs = undefined;
  return scope.call.token;
}

/** The caller of this RPC; throws Unauthenticated if serverAuthInterceptor did not run. */
export function principalOf(ctx: HandlerContext): Principal {
  const call = ctx.values.get(callContextKey);
  if (!call) throw unauthenticated("no verified caller on this call", "missing_context");
  return call.principal;
}

/** The call being served in this async scope, if any (for logging and peer calls). */
export function currentCallContext(): CallContext | undefined {
  return scopes.getStore()?.call;
}

/**
 * Runs background work (retention sweeps, schedulers) for one tenant as a service principal, so
 * peer calls made inside `fn` carry a context instead of failing as anonymous.
 */
export async function runAsService<T>(
  signer: ContextSigner,
  tenantId: string,
  fn: () => Promise<T> | T,
  options: { service?: string; workspaceId?: string; requestId?: string } = {},
): Promise<T> {
  const principal = buildPrincipal({
    kind: "service",
    tenantId,
    userId: `service:${options.service ?? "clasper"}`,
    workspaceId: options.workspaceId,
    roles: ["admin"],
  });
  const requestId = options.requestId ?? randomUUID();
  const token = await signer.sign({ principal, requestId });
  return scopes.run({ call: { principal, requestId, token }, signer }, fn);
}

function withinScope<T>(scope: Scope, source: AsyncIterable<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = scopes.run(scope, () => source[Symbol.asyncIterator]());
      const bound: AsyncIterator<T> = { next: (...args) => scopes.run(scope, () => it.next(...args)) };
      const { return: ret, throw: thr } = it;
      if (ret) bound.return = (value) => scopes.run(scope, () => ret.call(it, value));
      if (thr) bound.throw = (error) => scopes.run(scope, () => thr.call(it, error));
      return bound;
    },
  };
}
