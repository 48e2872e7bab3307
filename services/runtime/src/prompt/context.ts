/**
 * Rough token count: one token per four characters (UTF-16 code units) of all the texts together,
 * rounded up. It needs no tokenizer and errs high for English prose and low for CJK text; it only
 * decides when to warn, never what is sent.
 */
export function estimateTokens(...texts: string[]): number {
  let chars = 0;
  for (const text of texts) chars += text.length;
  return Math.ceil(chars / 4);
}

/** Default of CLASPER_CONTEXT_WARNING_THRESHOLD, percent of the model's context window. */
export const DEFAULT_CONTEXT_WARNING_THRESHOLD = 75;

/**
 * The `context_warning` of a response when the estimated prompt uses more than `thresholdPercent`
 * of the model's context window: "Context usage is 81.3% of 128000 tokens. Consider compacting
 * history." Undefined below the threshold or when the window is unknown (0).
 */
export function contextWarning(estimatedTokens: number, contextWindow: number, thresholdPercent: number = DEFAULT_CONTEXT_WARNING_THRESHOLD): string | undefined {
  if (!(contextWindow > 0)) return undefined;
  const percent = (estimatedTokens / contextWindow) * 100;
  if (!(percent > thresholdPercent)) return undefined;
  return `Context usage is ${percent.toFixed(1)}% of ${contextWindow} tokens. Consider compacting history.`;
}
