import { Code } from "@connectrpc/connect";
import { getModel, getModels, getProviders, type Api, type KnownProvider, type Model } from "@mariozechner/pi-ai";
import { clasperError } from "@clasper/core";
import { apiKeyOf, keyVariablesOf, type RuntimeConfig } from "../config.js";

/** A model ready to call: pi-ai's description (base URL already overridden) and its key. */
export interface ResolvedModel {
  readonly provider: string;
  readonly id: string;
  readonly model: Model<Api>;
  readonly apiKey: string;
}

/** The API pi-ai uses for a provider's models, for model ids its registry does not list. */
const DEFAULT_API: Record<string, Api> = {
  openai: "openai-responses",
  anthropic: "anthropic-messages",
};

/** "model" or "provider/model" (split only when there is exactly one "/"), seed §10. */
export function parseModelString(value: string, defaultProvider: string): { provider: string; id: string } {
  const parts = value.split("/");
  if (parts.length === 2 && parts[0] && parts[1]) return { provider: parts[0], id: parts[1] };
  return { provider: defaultProvider, id: value };
}

function isKnownProvider(provider: string): provider is KnownProvider {
  return (getProviders() as string[]).includes(provider);
}

function describe(provider: string, id: string, config: RuntimeConfig): Model<Api> {
  const known = isKnownProvider(provider) ? (getModel(provider, id as never) as Model<Api> | undefined) : undefined;
  // An id pi-ai does not list (a local model, a new release) is described like its provider's
  // others; the price is then unknown and counted as 0.
  const sibling = known ?? (isKnownProvider(provider) ? (getModels(provider)[0] as Model<Api> | undefined) : undefined);
  const api = config.LLM_API ?? known?.api ?? sibling?.api ?? DEFAULT_API[provider];
  if (!api) {
    throw clasperError(Code.FailedPrecondition, `unknown LLM provider "${provider}"; set LLM_API to the wire protocol its endpoint speaks`, {
      reason: "provider_not_configured",
      httpStatus: 503,
    });
  }
  const base: Model<Api> = known ?? {
    id,
    name: id,
    api,
    provider,
    baseUrl: sibling?.baseUrl ?? "",
    reasoning: false,
    input: ["text"],
    cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
    contextWindow: 128_000,
    maxTokens: 16_384,
  };
  return { ...base, api, ...(config.LLM_BASE_URL ? { baseUrl: config.LLM_BASE_URL } : {}) };
}

/**
 * Builds the pi-ai model for a model string. With LLM_BASE_URL set, any endpoint speaking the
 * provider's protocol serves it; a key is then optional (local servers and stubs need none).
 */
export function resolveModel(config: RuntimeConfig, value: string): ResolvedModel {
  const { provider, id } = parseModelString(value, config.LLM_PROVIDER);
  const model = describe(provider, id, config);
  const apiKey = apiKeyOf(config, provider) ?? (config.LLM_BASE_URL ? "not-needed" : undefined);
  if (!apiKey) {
    throw clasperError(
      Code.FailedPrecondition,
      `API key not configured for provider "${provider}". Set ${keyVariablesOf(provider).join(" or ")}.`,
      { reason: "provider_not_configured", httpStatus: 503 },
    );
  }
  return { provider, id, model, apiKey };
}

/** The models one logical call may use, in order: the requested one, then the fallback. */
export function modelChain(config: RuntimeConfig, requested: string): ResolvedModel[] {
  const primary = resolveModel(config, requested);
  const fallback = config.LLM_MODEL_FALLBACK;
  if (!fallback || fallback === requested) return [primary];
  return [primary, resolveModel(config, fallback)];
}
