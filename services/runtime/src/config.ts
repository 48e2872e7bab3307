import { z } from "zod";
import { Code } from "@connectrpc/connect";
import { clasperError, flag, parseConfig } from "@clasper/core";
import type { Env } from "@clasper/service-kit";

const positiveInt = (fallback: number, max: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const nonNegativeInt = (fallback: number, max: number) => z.coerce.number().int().min(0).max(max).default(fallback);

/** The runtime's environment: providers, the Control Plane, limits and retries. */
const runtimeConfigShape = {
  LLM_PROVIDER: z.string().min(1).default("openai"),
  LLM_MODEL_DEFAULT: z.string().min(1).default("gpt-4o-mini"),
  LLM_MODEL_FALLBACK: z.string().min(1).optional(),
  LLM_MODEL_CHEAP: z.string().min(1).optional(),
  /** Any endpoint that speaks the provider's wire protocol (a proxy, a local server, a stub). */
  LLM_BASE_URL: z.string().url({ message: "must be an http(s) URL" }).optional(),
  /** Wire protocol override for LLM_BASE_URL endpoints; default: the model's own API in pi-ai. */
  LLM_API: z.enum(["openai-completions", "openai-responses", "anthropic-messages"]).optional(),
  OPENAI_API_KEY: z.string().optional(),
  ANTHROPIC_API_KEY: z.string().optional(),
  GEMINI_API_KEY: z.string().optional(),
  GOOGLE_API_KEY: z.string().optional(),
  XAI_API_KEY: z.string().optional(),
  GROQ_API_KEY: z.string().optional(),
  MISTRAL_API_KEY: z.string().optional(),
  OPENROUTER_API_KEY: z.string().optional(),
  DEEPSEEK_API_KEY: z.string().optional(),
  /** The Control Plane backend (mission control). */
  BACKEND_URL: z.string().url({ message: "must be an http(s) URL" }).optional(),
  /** Shared with the backend; required only once an execution needs the backend. */
  AGENT_JWT_SECRET: z.string().min(32, "must be at least 32 bytes").optional(),
  CLASPER_DEFAULT_TASK: z.string().min(1).max(512).optional(),
  /** Percent of the model's context window above which a warning is returned. */
  CLASPER_CONTEXT_WARNING_THRESHOLD: z.coerce.number().min(1).max(100).default(75),
  CLASPER_MAX_STEPS: positiveInt(10, 1000),
  CLASPER_EXECUTION_TIMEOUT_MS: positiveInt(120_000, 3_600_000),
  CLASPER_LLM_TIMEOUT_MS: positiveInt(60_000, 600_000),
  /** Provider requests per logical call and model (retries included), at most 3. */
  CLASPER_RETRY_ATTEMPTS: positiveInt(3, 3),
  CLASPER_RETRY_BASE_DELAY_MS: nonNegativeInt(250, 60_000),
  CLASPER_RETRY_MAX_DELAY_MS: nonNegativeInt(8_000, 120_000),
  /** Jitter as a share of the delay, 0..1. */
  CLASPER_RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.2),
  CLASPER_CONTROL_PLANE_TIMEOUT_MS: positiveInt(30_000, 600_000),
  CLASPER_WEBHOOK_TIMEOUT_MS: positiveInt(10_000, 120_000),
  /** Lets webhooks target loopback and private addresses (local development, tests). */
  CLASPER_WEBHOOK_ALLOW_PRIVATE: flag(false),
  /** Lifetime of a minted X-Agent-Token, seconds. */
  CLASPER_AGENT_TOKEN_TTL_SECONDS: positiveInt(300, 7200),
  /** Worst-case output tokens reserved per model call when the request sets none. */
  CLASPER_RESERVE_OUTPUT_TOKENS: positiveInt(4096, 1_000_000),
  CLASPER_TEMPERATURE: z.coerce.number().min(0).max(2).default(0.4),
};

export type RuntimeConfig = z.infer<z.ZodObject<typeof runtimeConfigShape>>;

/** Parsed once when the service is built; the message names every bad variable. */
export function runtimeConfig(env: Env): RuntimeConfig {
  return parseConfig(runtimeConfigShape, env as Record<string, string | undefined>);
}

/** The provider's standard key variable (pi-ai's own table is the fallback for others). */
const KEY_VARIABLES: Record<string, readonly (keyof RuntimeConfig)[]> = {
  openai: ["OPENAI_API_KEY"],
  anthropic: ["ANTHROPIC_API_KEY"],
  google: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
  xai: ["XAI_API_KEY"],
  groq: ["GROQ_API_KEY"],
  mistral: ["MISTRAL_API_KEY"],
  openrouter: ["OPENROUTER_API_KEY"],
  deepseek: ["DEEPSEEK_API_KEY"],
};

export function keyVariablesOf(provider: string): readonly string[] {
  return KEY_VARIABLES[provider] ?? [`${provider.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_API_KEY`];
}

export function apiKeyOf(config: RuntimeConfig, provider: string): string | undefined {
  for (const name of KEY_VARIABLES[provider] ?? []) {
    const value = config[name];
    if (typeof value === "string" && value !== "") return value;
  }
  return undefined;
}

/**
 * What an execution that talks to the Control Plane needs. Checked per execution, not at start,
 * so a deployment that only serves /llm-task and /compact runs without a backend; the caller gets
 * a 503 naming the missing variable.
 */
export function backendSettings(config: RuntimeConfig): { url: string; secret: string } {
  const missing = [!config.BACKEND_URL && "BACKEND_URL", !config.AGENT_JWT_SECRET && "AGENT_JWT_SECRET"].filter(Boolean);
  if (missing.length > 0) {
    throw clasperError(Code.FailedPrecondition, `the runtime is not configured for the Control Plane: set ${missing.join(" and ")}`, {
      reason: "backend_not_configured",
      httpStatus: 503,
    });
  }
  return { url: config.BACKEND_URL!, secret: config.AGENT_JWT_SECRET! };
}
