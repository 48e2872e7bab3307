import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf } from "@clasper/auth";
import {
  CostForecastSchema,
  ForecastCostResponseSchema,
  ForecastDetailsSchema,
  type ForecastCostRequest,
  type ForecastCostResponse,
} from "@clasper/proto";
import { DEFAULT_BUDGET, type BudgetDefaults } from "../budget-check.js";
import { DEFAULT_MAX_OUTPUT_TOKENS, forecastCost, type BudgetSnapshot } from "../forecast.js";
import { resolveModelPrice } from "../pricing.js";
import { currentFigures } from "../store/budgets.js";
import type { GovernanceDatabase } from "../store/schema.js";
import { countPromptTokens } from "../tokens.js";

/** Reads the tenant's current budget figures; undefined when it has none. */
export type BudgetReader = (db: Kysely<GovernanceDatabase>, tenantId: string) => Promise<BudgetSnapshot | undefined>;

/**
 * The figures a reservation would face right now: the tenant's budget (rolled over to the current
 * period), or the default budget a tenant without one gets on its first reservation.
 */
export function budgetReader(defaults: BudgetDefaults = DEFAULT_BUDGET): BudgetReader {
  return (db, tenantId) => currentFigures(db, tenantId, defaults, new Date());
}

/** POST /cost/forecast: the cost of an execution at the tenant's prices, against its budget. */
export class ForecastHandlers {
  constructor(
    private readonly db: Kysely<GovernanceDatabase>,
    private readonly readBudget: BudgetReader = budgetReader(),
  ) {}

  async forecastCost(req: ForecastCostRequest, ctx: HandlerContext): Promise<ForecastCostResponse> {
    const { tenantId } = principalOf(ctx);
    const { price, known } = await resolveModelPrice(this.db, tenantId, req.model, req.provider);
    const counted =
      req.prompt.case === "promptText"
        ? await countPromptTokens(req.prompt.value, price.model)
        : { tokens: Number(req.prompt.value ?? 0n), method: "given" };
    const outputTokens = req.maxOutputTokens || DEFAULT_MAX_OUTPUT_TOKENS;
    const budget = await this.readBudget(this.db, tenantId);
    const result = forecastCost({ inputTokens: counted.tokens, outputTokens }, price, budget);
    const warnings = known
      ? result.warnings
      : [`Model "${req.model}" is not in the price catalogue; priced at the tenant's default price`, ...result.warnings];
    return create(ForecastCostResponseSchema, {
      forecast: create(CostForecastSchema, {
        estimatedCostMicros: result.estimatedCostMicros,
        inputCostMicros: result.inputCostMicros,
        outputCostMicros: result.outputCostMicros,
        budgetAllowed: result.budgetAllowed,
        budgetRemainingMicros: result.budgetRemainingMicros ?? 0n,
        wouldExceedBudget: result.wouldExceedBudget,
        warning: warnings.join("; "),
      }),
      details: create(ForecastDetailsSchema, {
        inputTokens: BigInt(counted.tokens),
        outputTokens: BigInt(outputTokens),
        model: price.model,
        provider: price.provider,
        inputPricePerMtokMicros: price.inputPerMtokMicros,
        outputPricePerMtokMicros: price.outputPerMtokMicros,
        priceKnown: known,
        tokenCounting: counted.method,
      }),
    });
  }
}
