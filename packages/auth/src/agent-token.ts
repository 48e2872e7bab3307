import { jwtVerify, SignJWT } from "jose";
import { AuthError, mapJoseErrors, secretKey } from "./errors.js";

/** Variable the agent-token secret is configured by; shared with the Control Plane backend. */
const SECRET_VARIABLE = "AGENT_JWT_SECRET";

export interface AgentTokenInit {
  secret: string;
  userId: string;
  agentRole: string;
  /** Short by default (v1 used 2 h): the token is minted per request and only needs to outlive it. */
  ttlSeconds?: number;
  agentId?: string;
}

export interface AgentTokenClaims {
  userId: string;
  agentRole: string;
  agentId?: string;
  expiresAt: Date;
}

/** The `X-Agent-Token` Clasper sends to the Control Plane backend (spec §7.2). */
export async function mintAgentToken(init: AgentTokenInit): Promise<string> {
  const key = secretKey(init.secret, SECRET_VARIABLE);
  if (!init.userId || !init.agentRole) throw new TypeError("mintAgentToken needs userId and agentRole");
  return new SignJWT({
    type: "agent",
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

/** The backend side of §7.2, for the reference backend and conformance tests. */
export async function verifyAgentToken(secret: string, token: string): Promise<AgentTokenClaims> {
  const key = secretKey(secret, SECRET_VARIABLE);
  const { payload } = await mapJoseErrors(() => jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["exp"] }));
  if (payload["type"] !== "agent") throw new AuthError("invalid_token", "token is not an agent token");
  const userId = payload["user_id"];
  const agentRole = payload["agent_role"];
  if (typeof userId !== "string" || userId === "") throw new AuthError("missing_claim", "token has no user_id claim");
  if (typeof agentRole !== "string" || agentRole === "") {
    throw new AuthError("missing_claim", "token has no agent_role claim");
  }
  const agentId = payload["agent_id"];
  return {
    userId,
    agentRole,
    ...(typeof agentId === "string" && agentId !== "" ? { agentId } : {}),
    expiresAt: new Date((payload.exp ?? 0) * 1000),
  };
}
