import { getModels, getProviders, type KnownProvider } from "@mariozechner/pi-ai";
import { evaluateBudget, type BudgetFigures } from "./budget-check.js";

/** Prices of one million tokens, integer micro-dollars. */
export interface TokenPrices {
  inputPerMtokMicros: bigint;
  outputPerMtokMicros: bigint;
  cacheReadPerMtokMicros: bigint;
  cacheWritePerMtokMicros: bigint;
}

/** A price for one model, and where it came from. */
export interface ModelPrice extends TokenPrices {
  provider: string;
  model: string;
  /**
   * "catalog": pi-ai's model table; "tenant_override": the tenant's price for this model;
   * "tenant_default": the tenant's fallback price (model "*") for a model the catalogue lacks.
   */
  source: "catalog" | "tenant_override" | "tenant_default";
}

/** The tenant's budget figures a forecast compares against (the budgets area's BudgetFigures). */
export type BudgetSnapshot = BudgetFigures;

export interface ForecastUsage {
  inputTokens: number;
  outputTokens: number;
  /** Prompt tokens served from the provider's cache (priced at cacheRead); default 0. */
  cacheReadTokens?: number;
  /** Prompt tokens written to the provider's cache (priced at cacheWrite); default 0. */
  cacheWriteTokens?: number;
}

export interface ForecastResult {
  estimatedCostMicros: bigint;
  /** Input (and cache) tokens × their prices. */
  inputCostMicros: bigint;
  outputCostMicros: bigint;
  /** False only when a hard budget would be exceeded. */
  budgetAllowed: boolean;
  /** limit − spent − reserved; undefined without a budget. */
  budgetRemainingMicros: bigint | undefined;
  wouldExceedBudget: boolean;
  warnings: string[];
}

/** Default output tokens assumed when the request gives none (seed §2.5). */
export const DEFAULT_MAX_OUTPUT_TOKENS = 1000;

const MICROS_PER_DOLLAR = 1_000_000;
const TOKENS_PER_MTOK = 1_000_000n;

/** USD per million tokens (pi-ai's unit) → integer micro-dollars per million tokens. */
export function dollarsToMicros(dollars: number): bigint {
  return BigInt(Math.round(dollars * MICROS_PER_DOLLAR));
}

/** tokens × price per million, rounded up: a forecast never under-reserves by a rounding. */
export function tokenCostMicros(tokens: number, perMtokMicros: bigint): bigint {
  const product = BigInt(tokens) * perMtokMicros;
  return (product + TOKENS_PER_MTOK - 1n) / TOKENS_PER_MTOK;
}

/**
 * Providers searched, in order, for a model id given without a provider: the first-party APIs
 * first (so "gpt-4o" is OpenAI's price, not a reseller's), then every other catalogue provider
 * in name order.
 */
const FIRST_PARTY: readonly KnownProvider[] = ["openai", "anthropic", "google", "mistral", "xai", "deepseek"];

function providerSearchOrder(): string[] {
  const all = getProviders() as string[];
  return [...FIRST_PARTY.filter((p) => all.includes(p)), ...all.filter((p) => !(FIRST_PARTY as readonly string[]).includes(p)).sort()];
}

function catalogEntry(provider: string, model: string): ModelPrice | undefined {
  if (!(getProviders() as string[]).includes(provider)) return undefined;
  const found = getModels(provider as KnownProvider).find((m) => m.id === model);
  if (!found) return undefined;
  return {
    provider,
    model,
    source: "catalog",
    inputPerMtokMicros: dollarsToMicros(found.cost.input),
    outputPerMtokMicros: dollarsToMicros(found.cost.output),
    cacheReadPerMtokMicros: dollarsToMicros(found.cost.cacheRead),
    cacheWritePerMtokMicros: dollarsToMicros(found.cost.cacheWrite),
  };
}

/** "provider/model" when the prefix is a catalogue provider, else the string as a model id. */
export function splitModel(model: string, provider?: string): { provider: string | undefined; model: string } {
  if (provider) return { provider, model };
  const slash = model.indexOf("/");
  if (slash > 0 && (getProviders() as string[]).includes(model.slice(0, slash))) {
    return { provider: model.slice(0, slash), model: model.slice(slash + 1) };
  }
  return { provider: undefined, model };
}

/**
 * The catalogue price of a model: with a provider, that provider's entry only; without one, the
 * first provider (FIRST_PARTY order) listing the id. "openai/gpt-4o" is tried as provider
 * "openai" + "gpt-4o" first, then as the literal id (OpenRouter lists "openai/gpt-4o").
 */
export function catalogPrice(model: string, provider?: string): ModelPrice | undefined {
  const split = splitModel(model, provider);
  if (split.provider) {
    const direct = catalogEntry(split.provider, split.model);
    if (direct || provider) return direct;
  }
  for (const candidate of providerSearchOrder()) {
    const found = catalogEntry(candidate, model);
    if (found) return found;
  }
  return undefined;
}

/**
 * The cost of an execution and what it means for the budget. Pure: prices come resolved
 * (catalogPrice or a tenant override), the budget as read by the caller. Input, cache and output
 * tokens are each priced and rounded up to whole micro-dollars.
 */
export function forecastCost(usage: ForecastUsage, price: TokenPrices, budget?: BudgetSnapshot): ForecastResult {
  const inputCostMicros =
    tokenCostMicros(usage.inputTokens, price.inputPerMtokMicros) +
    tokenCostMicros(usage.cacheReadTokens ?? 0, price.cacheReadPerMtokMicros) +
    tokenCostMicros(usage.cacheWriteTokens ?? 0, price.cacheWritePerMtokMicros);
  const outputCostMicros = tokenCostMicros(usage.outputTokens, price.outputPerMtokMicros);
  const estimatedCostMicros = inputCostMicros + outputCostMicros;
  if (!budget) {
    return {
      estimatedCostMicros,
      inputCostMicros,
      outputCostMicros,
      budgetAllowed: true,
      budgetRemainingMicros: undefined,
      wouldExceedBudget: false,
      warnings: ["No budget is set for this tenant: the remaining budget is unknown"],
    };
  }
  // The budgets area's rule (the same one a reservation applies), so forecast and reserve agree.
  const check = evaluateBudget(budget, estimatedCostMicros);
  return {
    estimatedCostMicros,
    inputCostMicros,
    outputCostMicros,
    budgetAllowed: check.allowed,
    budgetRemainingMicros: check.remainingMicros,
    wouldExceedBudget: check.reason === "budget_exceeded",
    warnings: check.warning ? [check.warning] : [],
  };
}
