import { ConfigError } from "@clasper/core";
import { AuthConfigError, createCallerVerifier, ensureDevSecret, mintDevToken, type CallerVerifier, type CallerVerifierOptions } from "@clasper/auth";
import type { GatewayConfig } from "./config.js";

export interface GatewayAuth {
  verifier: CallerVerifier;
  /** Set only in development when no auth was configured: a ready-to-use admin token for tenant "dev". */
  devToken?: string;
}

/**
 * Caller authentication from the environment. With nothing configured, development gets a
 * generated secret under the data directory and a printed token; production refuses to start.
 */
export async function configureCallerAuth(config: GatewayConfig): Promise<GatewayAuth> {
  if (config.CLASPER_DAEMON_KEY && !config.CLASPER_DAEMON_TENANT) {
    throw new ConfigError([{ variable: "CLASPER_DAEMON_TENANT", reason: "is required when CLASPER_DAEMON_KEY is set (the key acts for one tenant)" }]);
  }
  const common = {
    ...(config.CLASPER_AUTH_ISSUER ? { issuer: config.CLASPER_AUTH_ISSUER } : {}),
    ...(config.CLASPER_AUTH_AUDIENCE ? { audience: config.CLASPER_AUTH_AUDIENCE } : {}),
    ...(config.CLASPER_AUTH_ALGORITHMS ? { algorithms: config.CLASPER_AUTH_ALGORITHMS.split(",").map((a) => a.trim()).filter(Boolean) } : {}),
    claims: {
      tenant: config.CLASPER_AUTH_TENANT_CLAIM,
      user: config.CLASPER_AUTH_USER_CLAIM,
      workspace: config.CLASPER_AUTH_WORKSPACE_CLAIM,
      roles: config.CLASPER_AUTH_ROLES_CLAIM,
    },
    ...(config.CLASPER_DAEMON_KEY && config.CLASPER_DAEMON_TENANT
      ? { daemonKey: { key: config.CLASPER_DAEMON_KEY, tenantId: config.CLASPER_DAEMON_TENANT } }
      : {}),
  };
  if (config.CLASPER_AUTH_JWT_SECRET || config.CLASPER_AUTH_JWKS_URL || common.daemonKey) {
    // A daemon key alone is a complete configuration: it acts for its one tenant.
    return {
      verifier: verifierOrConfigError({
        ...common,
        ...(config.CLASPER_AUTH_JWT_SECRET ? { hsSecret: config.CLASPER_AUTH_JWT_SECRET } : {}),
        ...(config.CLASPER_AUTH_JWKS_URL ? { jwksUrl: config.CLASPER_AUTH_JWKS_URL } : {}),
      }),
    };
  }
  if (config.NODE_ENV === "production") {
    throw new ConfigError([
      { variable: "CLASPER_AUTH_JWT_SECRET", reason: "caller authentication is required in production: set it (or CLASPER_AUTH_JWKS_URL)" },
    ]);
  }
  const secret = await ensureDevSecret(config.CLASPER_DATA_DIR);
  const devToken = await mintDevToken(secret, { tenantId: "dev", roles: ["admin"], userId: "dev-user", ttl: 30 * 24 * 3600 });
  return { verifier: verifierOrConfigError({ ...common, hsSecret: secret }), devToken };
}

/** Auth misconfiguration is a configuration error like any other: exit 2, variable named. */
function verifierOrConfigError(options: CallerVerifierOptions): CallerVerifier {
  try {
    return createCallerVerifier(options);
  } catch (err) {
    if (err instanceof AuthConfigError) {
      const variable = /\b(CLASPER_[A-Z_]+)\b/.exec(err.message)?.[1] ?? "CLASPER_AUTH_JWT_SECRET";
      throw new ConfigError([{ variable, reason: err.message }]);
    }
    throw err;
  }
}
