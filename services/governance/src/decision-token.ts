import { hkdfSync, randomBytes } from "node:crypto";
import { errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import { parseConfig } from "@clasper/core";
import type { Env } from "@clasper/service-kit";
import type { Logger } from "pino";

const ISSUER = "clasper-governance";
const AUDIENCE = "clasper-decision";
/** A distinct `typ`, so no other Clasper JWT can pass as a decision token even if keys were shared. */
const TYPE = "clasper-decision+jwt";

/** What a decision token is bound to. */
export interface DecisionTokenClaims {
  tenantId: string;
  decisionId: string;
  executionId: string;
  workspaceId?: string | undefined;
  /** Stored on the decision; consumption requires this exact id. */
  jti: string;
}

/** Why a presented token was refused (the message never echoes the token). */
export class DecisionTokenError extends Error {
  override readonly name = "DecisionTokenError";
  constructor(readonly reason: "expired" | "invalid") {
    super(reason === "expired" ? "decision token expired" : "decision token is not valid");
  }
}

export interface DecisionTokens {
  /** Lifetime of a minted token, from approval. */
  readonly ttlSeconds: number;
  /** Deterministic for the same claims and times, so GetDecision can re-mint instead of storing it. */
  mint(claims: DecisionTokenClaims, issuedAt: Date, expiresAt: Date): Promise<string>;
  verify(token: string): Promise<DecisionTokenClaims>;
}

export function createDecisionTokens(secret: Uint8Array, ttlSeconds: number): DecisionTokens {
  return {
    ttlSeconds,
    async mint(claims, issuedAt, expiresAt) {
      return new SignJWT({
        tenant_id: claims.tenantId,
        decision_id: claims.decisionId,
        execution_id: claims.executionId,
        ...(claims.workspaceId ? { workspace_id: claims.workspaceId } : {}),
      })
        .setProtectedHeader({ alg: "HS256", typ: TYPE })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setJti(claims.jti)
        .setIssuedAt(Math.floor(issuedAt.getTime() / 1000))
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(secret);
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, secret, {
          issuer: ISSUER,
          audience: AUDIENCE,
          typ: TYPE,
          algorithms: ["HS256"],
          requiredClaims: ["jti", "exp", "tenant_id", "decision_id", "execution_id"],
        });
        const text = (name: string) => (typeof payload[name] === "string" ? (payload[name] as string) : "");
        if (!payload.jti || !text("tenant_id") || !text("decision_id") || !text("execution_id")) throw new DecisionTokenError("invalid");
        return {
          tenantId: text("tenant_id"),
          decisionId: text("decision_id"),
          executionId: text("execution_id"),
          workspaceId: text("workspace_id") || undefined,
          jti: payload.jti,
        };
      } catch (err) {
        if (err instanceof errors.JWTExpired) throw new DecisionTokenError("expired");
        throw new DecisionTokenError("invalid");
      }
    },
  };
}

const configShape = {
  CLASPER_DECISION_TOKEN_SECRET: z.string().min(32, "must be at least 32 bytes").optional(),
  CLASPER_DECISION_TOKEN_TTL_SECONDS: z.coerce.number().int().min(10).max(86_400).default(600),
  CLASPER_DECISION_TTL_SECONDS: z.coerce.number().int().min(60).max(30 * 86_400).default(3600),
  CLASPER_INTERNAL_SECRET: z.string().min(32, "must be at least 32 bytes").optional(),
};

export interface DecisionConfig {
  tokens: DecisionTokens;
  /** How long a pending decision waits for a resolver before it expires. */
  decisionTtlSeconds: number;
}

/**
 * The decision token key: CLASPER_DECISION_TOKEN_SECRET; else derived (HKDF) from
 * CLASPER_INTERNAL_SECRET, which every replica shares; else (one process, no secrets) random,
 * in which case tokens do not survive a restart and the log says so.
 */
export function decisionConfig(env: Env, logger: Pick<Logger, "warn">): DecisionConfig {
  const config = parseConfig(configShape, env);
  let secret: Uint8Array;
  if (config.CLASPER_DECISION_TOKEN_SECRET) {
    secret = new TextEncoder().encode(config.CLASPER_DECISION_TOKEN_SECRET);
  } else if (config.CLASPER_INTERNAL_SECRET) {
    secret = new Uint8Array(hkdfSync("sha256", config.CLASPER_INTERNAL_SECRET, "", "clasper decision token v1", 32));
  } else {
    secret = randomBytes(32);
    logger.warn(
      "CLASPER_DECISION_TOKEN_SECRET is not set: decision tokens are signed with a random key and will not survive a restart",
    );
  }
  return {
    tokens: createDecisionTokens(secret, config.CLASPER_DECISION_TOKEN_TTL_SECONDS),
    decisionTtlSeconds: config.CLASPER_DECISION_TTL_SECONDS,
  };
}
