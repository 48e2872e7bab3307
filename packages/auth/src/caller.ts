import { createHash, timingSafeEqual } from "node:crypto";
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { listClaim, stringClaim } from "./claims.js";
import { AuthConfigError, AuthError, hmacKey, mapJoseErrors, secretKey } from "./errors.js";
import { buildPrincipal, type Principal } from "./principal.js";

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
}

export interface CallerVerifier {
  /**
   * Verifies the `Authorization` header value or the daemon key header value.
   * Resolves to the caller, or rejects with AuthError.
   */
  verify(authorization: string | undefined, daemonKey?: string | undefined): Promise<Principal>;
}

type JwtCheck = (token: string) => Promise<JWTPayload>;

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
      return principalFromClaims(await checkJwt(token), claims);
    },
  };
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
    return async (token) => {
      const hmac = await key();
      const { payload } = await mapJoseErrors(() => jwtVerify(token, hmac, { ...verifyOptions, algorithms }));
      return payload;
    };
  }
  if (jwksUrl !== undefined) {
    const algorithms = pinAlgorithms(options.algorithms, [...DEFAULT_JWKS_ALGORITHMS], isAsymmetric);
    const getKey = remoteKeys(jwksUrl, options);
    return async (token) => {
      const { payload } = await mapJoseErrors(() => jwtVerify(token, getKey, { ...verifyOptions, algorithms }));
      return payload;
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
    return structuredClone(principal);
  };
}

function digest(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}
