import { createHash, timingSafeEqual } from "node:crypto";
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { listClaim, stringClaim } from "./claims.js";
import { AuthConfigError, AuthError, hmacKey, mapJoseErrors, secretKey } from "./errors.js";
import { buildPrincipal, type Principal } from "./principal.js";
import { copyPrincipal, TokenCache } from "./token-cache.js";

/** Header the Clasper daemon (and the original v1 API) sends its static key in. */
export const DAEMON_KEY_HEADER = "x-agent-daemon-key";

export const DEFAULT_JWKS_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;

export interface ClaimNames {
  tenant?: string;
  user?: string;
  workspace?: string;
  roles?: string;
  allowedTenants?: string;
}

export interface CallerVerifierOptions {
  /** Shared HS256 secret (CLASPER_AUTH_JWT_SECRET), ≥ 32 bytes. Exclusive with jwksUrl. */
  hsSecret?: string;
  /** The identity provider's JWKS (CLASPER_AUTH_JWKS_URL). Exclusive with hsSecret. */
  jwksUrl?: string;
  /** CLASPER_AUTH_ALGORITHMS; HS256 only with hsSecret, asymmetric only with jwksUrl. */
  algorithms?: string[];
  issuer?: string;
  audience?: string;
  claims?: ClaimNames;
  /** Allowed clock skew between the token issuer and us (default 30 s). */
  clockToleranceSec?: number;
  daemonKey?: { key: string; tenantId: string };
  /** Minimum time between JWKS refetches triggered by an unknown `kid` (default 30 s). */
  jwksCooldownMs?: number;
  /** JWKS HTTP timeout (default 5 s). */
  jwksTimeoutMs?: number;
  /**
   * Verified bearer tokens remembered (default 1024, least recently used evicted; 0 turns the
   * cache off). A remembered token is answered without a second signature check until its `exp`,
   * and with a JWKS only while the key set still hands out the very key that checked it.
   */
  verifiedTokenCacheSize?: number;
}

export interface CallerVerifier {
  /**
   * Verifies the `Authorization` header value or the daemon key header value.
   * Resolves to the caller, or rejects with AuthError.
   */
  verify(authorization: string | undefined, daemonKey?: string | undefined): Promise<Principal>;
}

/**
 * A token whose signature and claims passed, and how to tell later whether the key that checked
 * it is still the key that would check it now (undefined: do not answer it from the cache).
 */
interface CheckedToken {
  payload: JWTPayload;
  keyStillCurrent: (() => boolean | Promise<boolean>) | undefined;
}

type JwtCheck = (token: string) => Promise<CheckedToken>;

interface CachedCaller {
  principal: Principal;
  keyStillCurrent: () => boolean | Promise<boolean>;
}

/**
 * Builds the gateway's caller check. One trust root per verifier: either a shared secret or a
 * JWKS, never both, so an HS256 token can never be checked against anything but the secret we
 * chose (the classic algorithm-confusion attack needs the two mixed). A deployment that needs
 * two identity sources builds two verifiers and routes by issuer.
 */
export function createCallerVerifier(options: CallerVerifierOptions): CallerVerifier {
  const claims = {
    tenant: options.claims?.tenant ?? "tenant_id",
    user: options.claims?.user ?? "user_id",
    workspace: options.claims?.workspace ?? "workspace_id",
    roles: options.claims?.roles ?? "roles",
    allowedTenants: options.claims?.allowedTenants ?? "allowed_tenants",
  };
  const checkJwt = createJwtCheck(options);
  const verified = new TokenCache<CachedCaller>(options.verifiedTokenCacheSize ?? 1024);
  const checkDaemon = options.daemonKey ? createDaemonCheck(options.daemonKey) : undefined;
  if (!checkJwt && !checkDaemon) {
    throw new AuthConfigError(
      "caller authentication is not configured: set CLASPER_AUTH_JWT_SECRET or CLASPER_AUTH_JWKS_URL " +
        "(or CLASPER_DAEMON_KEY with CLASPER_DAEMON_TENANT)",
    );
  }

  return {
    async verify(authorization, daemonKey) {
      const hasDaemonKey = daemonKey !== undefined && daemonKey !== "";
      const hasAuthorization = authorization !== undefined && authorization.trim() !== "";
      // Two credentials could name two tenants; refusing is safer than guessing which one counts.
      if (hasDaemonKey && hasAuthorization) {
        throw new AuthError("ambiguous_credentials", "send either Authorization or X-Agent-Daemon-Key, not both");
      }
      if (hasDaemonKey) {
        if (!checkDaemon) throw new AuthError("invalid_daemon_key", "daemon key authentication is not enabled");
        return checkDaemon(daemonKey);
      }
      if (!hasAuthorization) throw new AuthError("missing_token", "missing Authorization header");
      const token = bearerToken(authorization);
      if (!checkJwt) throw new AuthError("invalid_token", "bearer tokens are not accepted by this deployment");
      return cachedCaller(token) ?? (await checkedCaller(token, checkJwt));
    },
  };

  /**
   * Every request of a caller presents the same bearer token, and checking it (HMAC or RSA
   * through WebCrypto) was the largest single cost of a request. A token is answered from the
   * cache only under the conditions that make the answer the one jose would give now: the exact
   * same string, before its `exp` (jose's clock tolerance only ever extends acceptance past
   * `exp`, so stopping at `exp` never accepts what jose would refuse), and with a JWKS, only
   * while the remote key set still resolves the token's header to the very key object that
   * checked it. A key removed from the JWKS therefore stops the cached tokens it signed as soon
   * as jose's own copy of the key set is refreshed (stale after its cache age, or refetched for an
   * unknown `kid`), exactly when jose would start refusing them. Failures are never cached.
   */
  function cachedCaller(token: string): Promise<Principal> | undefined {
    const hit = verified.get(token);
    if (!hit) return undefined;
    const current = hit.keyStillCurrent();
    if (current === true) return Promise.resolve(copyPrincipal(hit.principal));
    if (current === false) return undefined;
    // A rejection (the key set cannot be reached) is the answer a full check would give too.
    return current.then((still) => (still ? copyPrincipal(hit.principal) : checkedCaller(token, checkJwt!)));
  }

  async function checkedCaller(token: string, check: JwtCheck): Promise<Principal> {
    verified.delete(token);
    const { payload, keyStillCurrent } = await check(token);
    const principal = principalFromClaims(payload, claims);
    if (keyStillCurrent && typeof payload.exp === "number") {
      verified.set(token, { principal, keyStillCurrent }, payload.exp * 1000);
    }
    return copyPrincipal(principal);
  }
}

function bearerToken(header: string): string {
  const match = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i.exec(header.trim());
  if (!match?.[1]) throw new AuthError("invalid_token", "Authorization header must be 'Bearer <token>'");
  return match[1];
}

function createJwtCheck(options: CallerVerifierOptions): JwtCheck | undefined {
  const { hsSecret, jwksUrl } = options;
  if (hsSecret !== undefined && jwksUrl !== undefined) {
    throw new AuthConfigError("set only one of CLASPER_AUTH_JWT_SECRET and CLASPER_AUTH_JWKS_URL");
  }
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: options.clockToleranceSec ?? 30,
    requiredClaims: ["exp"],
  };
  if (hsSecret !== undefined) {
    const key = hmacKey(hsSecret, "CLASPER_AUTH_JWT_SECRET");
    const algorithms = pinAlgorithms(options.algorithms, ["HS256"], (alg) => alg === "HS256");
    // One secret for the life of the process: a token it checked stays checked.
    const always = () => true;
    return async (token) => {
      const hmac = await key();
      const { payload } = await mapJoseErrors(() => jwtVerify(token, hmac, { ...verifyOptions, algorithms }));
      return { payload, keyStillCurrent: always };
    };
  }
  if (jwksUrl !== undefined) {
    const algorithms = pinAlgorithms(options.algorithms, [...DEFAULT_JWKS_ALGORITHMS], isAsymmetric);
    const getKey = remoteKeys(jwksUrl, options);
    return async (token) => {
      // The key jose picked for this token; when several keys match the header, jose tries each
      // itself and none is recorded, so the token is not cached.
      let used: unknown;
      const { payload, protectedHeader } = await mapJoseErrors(() =>
        jwtVerify(token, async (header, input) => (used = await getKey(header, input)), { ...verifyOptions, algorithms }),
      );
      if (used === undefined) return { payload, keyStillCurrent: undefined };
      const [encodedHeader = "", encodedPayload = "", signature = ""] = token.split(".");
      const input = { protected: encodedHeader, payload: encodedPayload, signature };
      const keyStillCurrent = async () => {
        try {
          return (await getKey(protectedHeader, input)) === used;
        } catch (err) {
          // The key set cannot be reached: the same answer a full check would give.
          if (err instanceof AuthError) throw err;
          // No key, or several, match the header now: let jose decide in full.
          return false;
        }
      };
      return { payload, keyStillCurrent };
    };
  }
  return undefined;
}

/** Algorithms are never taken from the token; a configured list may only narrow the safe set. */
function pinAlgorithms(
  configured: string[] | undefined,
  fallback: string[],
  allowed: (alg: string) => boolean,
): string[] {
  const list = configured && configured.length > 0 ? configured : fallback;
  const bad = list.filter((alg) => !allowed(alg));
  if (bad.length > 0) {
    throw new AuthConfigError(
      `CLASPER_AUTH_ALGORITHMS contains ${bad.join(", ")}, not allowed with this key source ` +
        `(HS256 only with CLASPER_AUTH_JWT_SECRET; RS*/PS*/ES*/EdDSA only with CLASPER_AUTH_JWKS_URL)`,
    );
  }
  return list;
}

function isAsymmetric(alg: string): boolean {
  return /^(RS|PS|ES)(256|384|512)$/.test(alg) || alg === "EdDSA" || alg === "Ed25519";
}

/**
 * jose's remote key set refetches on an unknown `kid` (key rotation) at most once per cooldown.
 * Failures to *reach* the key set are ours, not the caller's, so they become auth_unavailable.
 */
function remoteKeys(jwksUrl: string, options: CallerVerifierOptions): JWTVerifyGetKey {
  let url: URL;
  try {
    url = new URL(jwksUrl);
  } catch {
    throw new AuthConfigError("CLASPER_AUTH_JWKS_URL is not a valid URL");
  }
  const remote = createRemoteJWKSet(url, {
    cooldownDuration: options.jwksCooldownMs ?? 30_000,
    timeoutDuration: options.jwksTimeoutMs ?? 5_000,
  });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      throw new AuthError("auth_unavailable", "cannot fetch signing keys from the identity provider");
    }
  };
}

interface ResolvedClaimNames {
  tenant: string;
  user: string;
  workspace: string;
  roles: string;
  allowedTenants: string;
}

function principalFromClaims(payload: JWTPayload, names: ResolvedClaimNames): Principal {
  const tenantId = stringClaim(payload, names.tenant);
  if (!tenantId) throw new AuthError("missing_claim", `token has no ${names.tenant} claim`);
  // An anonymous user id would make the audit trail useless, so no "unknown" fallback.
  const userId = stringClaim(payload, names.user) ?? stringClaim(payload, "sub");
  if (!userId) throw new AuthError("missing_claim", `token has no ${names.user} or sub claim`);
  return buildPrincipal({
    kind: "user",
    tenantId,
    userId,
    workspaceId: stringClaim(payload, names.workspace),
    roles: listClaim(payload, names.roles) ?? listClaim(payload, "role") ?? [],
    allowedTenants: listClaim(payload, names.allowedTenants),
  });
}

/** The static key binds to exactly one tenant, as operator, so it cannot roam across tenants. */
function createDaemonCheck(config: { key: string; tenantId: string }): (presented: string) => Principal {
  const expected = digest(secretKey(config.key, "CLASPER_DAEMON_KEY"));
  if (config.tenantId.trim() === "") throw new AuthConfigError("CLASPER_DAEMON_TENANT must be set with CLASPER_DAEMON_KEY");
  const principal = buildPrincipal({ kind: "daemon", tenantId: config.tenantId, userId: "daemon", roles: ["operator"] });
  return (presented) => {
    // Hashing both sides gives equal-length inputs, so timingSafeEqual leaks neither content nor length.
    if (!timingSafeEqual(digest(new TextEncoder().encode(presented)), expected)) {
      throw new AuthError("invalid_daemon_key", "daemon key is not valid");
    }
    return copyPrincipal(principal);
  };
}

function digest(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}
