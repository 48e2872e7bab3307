import { z } from "zod";

/** Raised at start-up when the environment is unusable; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; reason: string }[]) {
    super(
      "Invalid configuration:\n" + problems.map((p) => `  ${p.variable}: ${p.reason}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/**
 * Parses the environment once with a zod object schema whose keys are variable names.
 * Empty strings count as unset, so `FOO=` in a .env file falls back to the default.
 */
export function parseConfig<S extends z.ZodRawShape>(shape: S, env: Env = process.env): z.infer<z.ZodObject<S>> {
  const cleaned: Env = {};
  for (const key of Object.keys(shape)) {
    const value = env[key];
    cleaned[key] = value === undefined || value.trim() === "" ? undefined : value;
  }
  const result = z.object(shape).safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        variable: String(issue.path[0] ?? "(environment)"),
        reason: issue.message,
      })),
    );
  }
  return result.data;
}

/** A TCP port number from the environment. */
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** A boolean flag written as true/false/1/0/yes/no. */
export const flag = (fallback: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"], { message: "expected true or false" })
    .default(fallback ? "true" : "false")
    .transform((v) => v === "true" || v === "1" || v === "yes");

/** Settings every Clasper process shares. */
export const commonConfigShape = {
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  CLASPER_HOST: z.string().default("0.0.0.0"),
  CLASPER_DATA_DIR: z.string().default(".clasper"),
  DATABASE_URL: z.string().url({ message: "must be a postgres:// URL" }).optional(),
  CLASPER_DB_POOL_MAX: z.coerce.number().int().min(1).max(500).default(20),
  CLASPER_INTERNAL_SECRET: z.string().min(32, "must be at least 32 bytes").optional(),
  CLASPER_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
};

export type CommonConfig = z.infer<z.ZodObject<typeof commonConfigShape>>;
