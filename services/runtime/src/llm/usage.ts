import { create } from "@bufbuild/protobuf";
import type { Api, Model, Usage } from "@mariozechner/pi-ai";
import { CostBreakdownSchema, TokenUsageSchema, type CostBreakdown, type TokenUsage } from "@clasper/proto";

/** Token and cost totals of one or more model calls; money in integer micro-dollars. */
export interface Meter {
  /** Input tokens including cache reads and writes (the GenAI convention). */
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  reasoning: number;
  inputMicros: number;
  outputMicros: number;
  cacheReadMicros: number;
  cacheWriteMicros: number;
  totalMicros: number;
}

export function emptyMeter(): Meter {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0, inputMicros: 0, outputMicros: 0, cacheReadMicros: 0, cacheWriteMicros: 0, totalMicros: 0 };
}

const micros = (usd: number) => Math.max(0, Math.round(usd * 1_000_000));

/** pi-ai's usage (input excludes cache; cost in USD) as a meter. */
export function meterOf(usage: Usage, reasoning = 0): Meter {
  const parts = {
    inputMicros: micros(usage.cost.input),
    outputMicros: micros(usage.cost.output),
    cacheReadMicros: micros(usage.cost.cacheRead),
    cacheWriteMicros: micros(usage.cost.cacheWrite),
  };
  return {
    input: usage.input + usage.cacheRead + usage.cacheWrite,
    output: usage.output,
    cacheRead: usage.cacheRead,
    cacheWrite: usage.cacheWrite,
    reasoning,
    ...parts,
    totalMicros: parts.inputMicros + parts.outputMicros + parts.cacheReadMicros + parts.cacheWriteMicros,
  };
}

export function addMeter(into: Meter, more: Meter): void {
  for (const key of Object.keys(into) as (keyof Meter)[]) into[key] += more[key];
}

export function tokenUsageOf(m: Meter): TokenUsage {
  return create(TokenUsageSchema, {
    promptTokens: BigInt(m.input),
    completionTokens: BigInt(m.output),
    totalTokens: BigInt(m.input + m.output),
    cacheReadTokens: BigInt(m.cacheRead),
    cacheWriteTokens: BigInt(m.cacheWrite),
    reasoningTokens: BigInt(m.reasoning),
  });
}

export function costOf(m: Meter, model: string): CostBreakdown {
  return create(CostBreakdownSchema, {
    model,
    inputCostMicros: BigInt(m.inputMicros),
    outputCostMicros: BigInt(m.outputMicros),
    cacheReadCostMicros: BigInt(m.cacheReadMicros),
    cacheWriteCostMicros: BigInt(m.cacheWriteMicros),
    totalMicros: BigInt(m.totalMicros),
    currency: "USD",
  });
}

/**
 * Worst-case cost of an execution, micro-dollars, for the budget reservation: every step
 * re-sends the prompt plus all earlier outputs and produces `maxOutput` tokens, priced at the
 * dearest model the call may fall back to. Prices are USD per million tokens, so
 * tokens × price is micro-dollars.
 */
export function worstCaseMicros(models: readonly Model<Api>[], promptTokens: number, maxOutput: number, steps: number): number {
  const priceIn = Math.max(0, ...models.map((m) => m.cost.input));
  const priceOut = Math.max(0, ...models.map((m) => m.cost.output));
  let total = 0;
  for (let step = 0; step < steps; step += 1) {
    total += (promptTokens + step * maxOutput) * priceIn + maxOutput * priceOut;
  }
  return Math.ceil(total);
}
