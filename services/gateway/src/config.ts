import { z } from "zod";
import { commonConfigShape, port } from "@clasper/core";

/** Everything the gateway reads from the environment (see docs/CONFIGURATION.md). */
export const gatewayConfigShape = {
  ...commonConfigShape,
  CLASPER_PORT: port(8081),
  CLASPER_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  CLASPER_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
  CLASPER_AUTH_JWT_SECRET: z.string().optional(),
  CLASPER_AUTH_JWKS_URL: z.string().url().optional(),
  CLASPER_AUTH_ISSUER: z.string().optional(),
  CLASPER_AUTH_AUDIENCE: z.string().optional(),
  CLASPER_AUTH_ALGORITHMS: z.string().optional(),
  CLASPER_AUTH_TENANT_CLAIM: z.string().default("tenant_id"),
  CLASPER_AUTH_USER_CLAIM: z.string().default("user_id"),
  CLASPER_AUTH_WORKSPACE_CLAIM: z.string().default("workspace_id"),
  CLASPER_AUTH_ROLES_CLAIM: z.string().default("roles"),
  CLASPER_DAEMON_KEY: z.string().min(32, "must be at least 32 characters").optional(),
  CLASPER_DAEMON_TENANT: z.string().optional(),
};

export type GatewayConfig = z.infer<z.ZodObject<typeof gatewayConfigShape>>;
