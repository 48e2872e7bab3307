import { createHash } from "node:crypto";
import { jwtVerify, type JWTPayload } from "jose";
import { AuthError, hmacKey, mapJoseErrors, secretKey } from "./errors.js";
import { encodeHeader, signHs256WithEncodedHeader } from "./hs256.js";
import { buildPrincipal, type Principal } from "./principal.js";
import { copyPrincipal, TokenCache } from "./token-cache.js";

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

/** A copy of a cached context, so no caller can change another's. */
function copyContext(context: InternalContext): InternalContext {
  return { requestId: context.requestId, principal: copyPrincipal(context.principal) };
}

/**
 * What createContextSigner / createContextVerifier know about the objects they made: a digest of
 * the secret and, for signers, the tokens they issued. Module-private, so only objects made here
 * (not look-alikes implementing the interfaces) can be paired by verifierTrustingOwnTokens.
 */
const signerState = new WeakMap<ContextSigner, { secretDigest: string; issued: TokenCache<InternalContext> }>();
const verifierDigest = new WeakMap<ContextVerifier, string>();

function secretDigest(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/**
 * Short-lived (60 s) so a token lifted from one request is useless soon after; long-running work
 * re-signs through forwardContextInterceptor({ signer }) or runAsService.
 */
export function createContextSigner(secret: string, options: { ttlSeconds?: number; issuedCacheSize?: number } = {}): ContextSigner {
  const key = secretKey(secret, SECRET_VARIABLE);
  const header = encodeHeader({ alg: "HS256", typ: TYPE });
  const ttlSeconds = options.ttlSeconds ?? 60;
  const issued = new TokenCache<InternalContext>(options.issuedCacheSize ?? 1024);
  const signer: ContextSigner = {
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
      const issuedAt = Math.floor(Date.now() / 1000);
      const expiresAt = issuedAt + ttlSeconds;
      // The claims in the order jose's SignJWT setters would add them (setIssuer, setAudience,
      // setSubject, setIssuedAt, setExpirationTime): the same bytes jose would sign.
      const token = signHs256WithEncodedHeader(
        header,
        { clasper: claim, request_id: requestId, iss: ISSUER, aud: AUDIENCE, sub: principal.userId, iat: issuedAt, exp: expiresAt },
        key,
      );
      // The context exactly as a verifier would decode it from these claims (fresh arrays, so
      // later changes to `principal` cannot reach it); claims a verifier would refuse are not kept.
      if (isContextClaim(claim)) issued.set(token, contextFromClaims(claim, requestId), expiresAt * 1000);
      return token;
    },
  };
  signerState.set(signer, { secretDigest: secretDigest(secret), issued });
  return signer;
}

/**
 * Every hop of a request presents the same token, so verified tokens are cached (bounded, least
 * recently used evicted) until their own `exp`; the string is the key, so a hit is exactly
 * the bytes whose signature was already checked.
 */
export function createContextVerifier(secret: string, options: { cacheSize?: number } = {}): ContextVerifier {
  const key = hmacKey(secret, SECRET_VARIABLE);
  const cache = new TokenCache<InternalContext>(options.cacheSize ?? 1024);

  const verifier: ContextVerifier = {
    async verify(token) {
      const hit = cache.get(token);
      if (hit) return copyContext(hit);
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
      cache.set(token, context, (payload.exp ?? 0) * 1000);
      // A copy, so one handler mutating its principal cannot change another request's.
      return copyContext(context);
    },
  };
  verifierDigest.set(verifier, secretDigest(secret));
  return verifier;
}

/**
 * In one process the gateway signs a context and, microseconds later, a service verifies it with
 * the same secret: an HMAC check (~90 µs of CPU through jose and WebCrypto) whose answer is known.
 * This verifier answers a token `signer` issued from the signer's own record, and anything else
 * through `verifier`. It is the same answer: HMAC is deterministic, so a verifier holding the
 * secret accepts exactly the bytes the signer produced, with exactly the claims it encoded, until
 * their `exp` (the record expires at the same instant and holds the context decoded from those
 * claims). A token that differs in one byte is not in the record and is checked in full.
 * It pairs only a signer and a verifier made by this module with the same secret; otherwise
 * `verifier` is returned unchanged.
 */
export function verifierTrustingOwnTokens(verifier: ContextVerifier, signer: ContextSigner): ContextVerifier {
  const own = signerState.get(signer);
  const digest = verifierDigest.get(verifier);
  if (!own || digest === undefined || own.secretDigest !== digest) return verifier;
  return {
    verify: (token) => {
      const issued = own.issued.get(token);
      return issued ? Promise.resolve(copyContext(issued)) : verifier.verify(token);
    },
  };
}

function contextFromPayload(payload: JWTPayload): InternalContext {
  const claim = payload["clasper"];
  const requestId = payload["request_id"];
  if (!isContextClaim(claim) || typeof requestId !== "string") {
    throw new AuthError("invalid_token", "internal context is malformed");
  }
  return contextFromClaims(claim, requestId);
}

function contextFromClaims(claim: ContextClaim, requestId: string): InternalContext {
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
