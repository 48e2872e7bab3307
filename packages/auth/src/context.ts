import { jwtVerify, SignJWT, type JWTPayload } from "jose";
import { AuthError, hmacKey, mapJoseErrors } from "./errors.js";
import { buildPrincipal, type Principal } from "./principal.js";

/** Header carrying the gateway-signed internal context on every service-to-service call. */
export const CONTEXT_HEADER = "x-clasper-context";

const ISSUER = "clasper-gateway";
/** A distinct `typ`, so a caller JWT can never pass as a context even if secrets were reused. */
const TYPE = "clasper-context+jwt";
const AUDIENCE = "clasper-internal";
const SECRET_VARIABLE = "CLASPER_INTERNAL_SECRET";

export interface InternalContext {
  principal: Principal;
  requestId: string;
}

export interface ContextSigner {
  sign(context: InternalContext): Promise<string>;
  readonly ttlSeconds: number;
}

export interface ContextVerifier {
  verify(token: string): Promise<InternalContext>;
}

/** Wire shape of the `clasper` claim; snake_case like every other claim we read. */
interface ContextClaim {
  kind: Principal["kind"];
  tenant_id: string;
  user_id: string;
  workspace_id?: string;
  roles: string[];
  allowed_tenants?: string[];
}

/**
 * Short-lived (60 s) so a token lifted from one request is useless soon after; long-running work
 * re-signs through forwardContextInterceptor({ signer }) or runAsService.
 */
export function createContextSigner(secret: string, options: { ttlSeconds?: number } = {}): ContextSigner {
  const key = hmacKey(secret, SECRET_VARIABLE);
  const ttlSeconds = options.ttlSeconds ?? 60;
  return {
    ttlSeconds,
    async sign({ principal, requestId }) {
      const claim: ContextClaim = {
        kind: principal.kind,
        tenant_id: principal.tenantId,
        user_id: principal.userId,
        roles: principal.roles,
        ...(principal.workspaceId ? { workspace_id: principal.workspaceId } : {}),
        ...(principal.allowedTenants ? { allowed_tenants: principal.allowedTenants } : {}),
      };
      return new SignJWT({ clasper: claim, request_id: requestId })
        .setProtectedHeader({ alg: "HS256", typ: TYPE })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(principal.userId)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(await key());
    },
  };
}

/**
 * Every hop of a request presents the same token, so verified tokens are cached (bounded, least
 * recently used evicted) until their own `exp`; the string is the key, so a hit is exactly
 * the bytes whose signature was already checked.
 */
export function createContextVerifier(secret: string, options: { cacheSize?: number } = {}): ContextVerifier {
  const key = hmacKey(secret, SECRET_VARIABLE);
  const cacheSize = options.cacheSize ?? 1024;
  const cache = new Map<string, { context: InternalContext; expiresAtMs: number }>();

  return {
    async verify(token) {
      const hit = cache.get(token);
      if (hit) {
        cache.delete(token);
        if (hit.expiresAtMs > Date.now()) {
          cache.set(token, hit);
          // A copy, so one handler mutating its principal cannot change another request's.
          return structuredClone(hit.context);
        }
      }
      // No clock tolerance: the gateway signed it moments ago and the lifetime is short.
      const hmac = await key();
      const { payload } = await mapJoseErrors(() =>
        jwtVerify(token, hmac, {
          algorithms: ["HS256"],
          issuer: ISSUER,
          audience: AUDIENCE,
          typ: TYPE,
          requiredClaims: ["exp"],
        }),
      );
      const context = contextFromPayload(payload);
      if (cache.size >= cacheSize) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
      cache.set(token, { context, expiresAtMs: (payload.exp ?? 0) * 1000 });
      return structuredClone(context);
    },
  };
}

function contextFromPayload(payload: JWTPayload): InternalContext {
  const claim = payload["clasper"];
  const requestId = payload["request_id"];
  if (!isContextClaim(claim) || typeof requestId !== "string") {
    throw new AuthError("invalid_token", "internal context is malformed");
  }
  return {
    requestId,
    principal: buildPrincipal({
      kind: claim.kind,
      tenantId: claim.tenant_id,
      userId: claim.user_id,
      workspaceId: claim.workspace_id,
      roles: claim.roles,
      allowedTenants: claim.allowed_tenants,
    }),
  };
}

function isContextClaim(value: unknown): value is ContextClaim {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const isStringList = (x: unknown): boolean => Array.isArray(x) && x.every((item) => typeof item === "string");
  return (
    (v["kind"] === "user" || v["kind"] === "daemon" || v["kind"] === "service") &&
    typeof v["tenant_id"] === "string" &&
    v["tenant_id"] !== "" &&
    typeof v["user_id"] === "string" &&
    isStringList(v["roles"]) &&
    (v["workspace_id"] === undefined || typeof v["workspace_id"] === "string") &&
    (v["allowed_tenants"] === undefined || isStringList(v["allowed_tenants"]))
  );
}
