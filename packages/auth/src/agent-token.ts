import { jwtVerify, SignJWT } from "jose";
import { AuthError, mapJoseErrors, secretKey } from "./errors.js";
import { TokenCache } from "./token-cache.js";

/** Variable the agent-token secret is configured by; shared with the Control Plane backend. */
const SECRET_VARIABLE = "AGENT_JWT_SECRET";

export interface AgentTokenInit {
  secret: string;
  /**
   * The tenant the execution runs for, signed as `tenant_id`: user ids are only unique within a
   * tenant, so a backend serving several tenants scopes by both (an addition to the v1 claims).
   */
  tenantId: string;
  /** The execution's workspace, signed as `workspace_id` when known. */
  workspaceId?: string;
  userId: string;
  agentRole: string;
  /** Short by default (v1 used 2 h): a token only needs to outlive the calls it is reused for. */
  ttlSeconds?: number;
  agentId?: string;
}

export interface AgentTokenClaims {
  tenantId: string;
  workspaceId?: string;
  userId: string;
  agentRole: string;
  agentId?: string;
  expiresAt: Date;
}

/** The `X-Agent-Token` Clasper sends to the Control Plane backend (spec §7.2). */
export async function mintAgentToken(init: AgentTokenInit): Promise<string> {
  const key = secretKey(init.secret, SECRET_VARIABLE);
  if (!init.tenantId || !init.userId || !init.agentRole) throw new TypeError("mintAgentToken needs tenantId, userId and agentRole");
  return new SignJWT({
    type: "agent",
    tenant_id: init.tenantId,
    ...(init.workspaceId ? { workspace_id: init.workspaceId } : {}),
    user_id: init.userId,
    agent_role: init.agentRole,
    ...(init.agentId ? { agent_id: init.agentId } : {}),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(`clasper:${init.agentRole}`)
    .setIssuedAt()
    .setExpirationTime(`${init.ttlSeconds ?? 300}s`)
    .sign(key);
}

export interface AgentTokenMinterOptions {
  secret: string;
  /** Lifetime of each minted token (default 300 s). */
  ttlSeconds?: number;
  /**
   * Share of a token's lifetime during which it is handed out again (default 0.5): a token handed
   * out always has at least the rest of its lifetime left (150 s of the default 300 s), far more
   * than one Control Plane call may take.
   */
  reuseFraction?: number;
  /** Identities kept; the least recently minted is dropped first (default 10,000). */
  maxEntries?: number;
}

/** Whom an agent token is for. */
export interface AgentTokenSubject {
  tenantId: string;
  workspaceId?: string;
  userId: string;
  agentRole: string;
  agentId?: string;
}

export type AgentTokenMinter = (subject: AgentTokenSubject) => Promise<string>;

/**
 * Agent tokens for the Control Plane, one per (tenant, workspace, user, role, agent) reused for the first
 * `reuseFraction` of its lifetime instead of signed for every outbound call: the claims of two
 * tokens for the same subject differ only in iat/exp, so reuse changes nothing the backend sees
 * but the timestamps. Concurrent first calls share one signing.
 */
export function createAgentTokenMinter(options: AgentTokenMinterOptions): AgentTokenMinter {
  secretKey(options.secret, SECRET_VARIABLE);
  const ttlSeconds = options.ttlSeconds ?? 300;
  const reuseMs = Math.max(0, Math.min(1, options.reuseFraction ?? 0.5)) * ttlSeconds * 1000;
  const maxEntries = options.maxEntries ?? 10_000;
  const minted = new TokenCache<Promise<string>>(maxEntries);
  return (subject) => {
    const key = JSON.stringify([subject.tenantId, subject.workspaceId ?? "", subject.userId, subject.agentRole, subject.agentId ?? ""]);
    const hit = minted.get(key);
    if (hit) return hit;
    const token = mintAgentToken({ secret: options.secret, ttlSeconds, ...subject });
    minted.set(key, token, Date.now() + reuseMs);
    token.catch(() => {
      if (minted.get(key) === token) minted.delete(key);
    });
    return token;
  };
}

/** The backend side of §7.2, for the reference backend and conformance tests. */
export async function verifyAgentToken(secret: string, token: string): Promise<AgentTokenClaims> {
  const key = secretKey(secret, SECRET_VARIABLE);
  const { payload } = await mapJoseErrors(() => jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["exp"] }));
  if (payload["type"] !== "agent") throw new AuthError("invalid_token", "token is not an agent token");
  const tenantId = payload["tenant_id"];
  const userId = payload["user_id"];
  const agentRole = payload["agent_role"];
  if (typeof tenantId !== "string" || tenantId === "") throw new AuthError("missing_claim", "token has no tenant_id claim");
  if (typeof userId !== "string" || userId === "") throw new AuthError("missing_claim", "token has no user_id claim");
  if (typeof agentRole !== "string" || agentRole === "") {
    throw new AuthError("missing_claim", "token has no agent_role claim");
  }
  const agentId = payload["agent_id"];
  const workspaceId = payload["workspace_id"];
  return {
    tenantId,
    ...(typeof workspaceId === "string" && workspaceId !== "" ? { workspaceId } : {}),
    userId,
    agentRole,
    ...(typeof agentId === "string" && agentId !== "" ? { agentId } : {}),
    expiresAt: new Date((payload.exp ?? 0) * 1000),
  };
}
