import { Buffer } from "node:buffer";
import { modelToEncodingMap } from "gpt-tokenizer/mapping";

export interface TokenCount {
  tokens: number;
  /** "tokenizer:<encoding>" (exact) or ESTIMATE_METHOD. */
  method: string;
}

/**
 * No tokenizer ships for Anthropic, Google and the other families, so their prompts are
 * estimated. Anthropic documents ~3.5 English characters per token; counting UTF-8 bytes rather
 * than characters keeps the same figure for ASCII while not undercounting CJK and other scripts
 * (one character, 3 bytes, often a whole token) by a factor of three.
 */
export const ESTIMATE_METHOD = "estimate:utf8_bytes/3.5";

export function estimateTokens(text: string): number {
  return Math.ceil((Buffer.byteLength(text, "utf8") * 2) / 7);
}

type Encoding = "o200k_base" | "o200k_harmony" | "cl100k_base" | "p50k_base" | "r50k_base";
type Counter = (text: string) => number;

/** OpenAI model ids (also when served by Azure, OpenRouter, Groq…: the model is the same). */
const OPENAI_FAMILY = /^(gpt-|chatgpt-|codex-|o[1-9](-|$)|text-embedding-|davinci|babbage)/;

/** The encoding of an OpenAI model (gpt-tokenizer's table; o200k_base for newer models it lacks). */
export function openAiEncoding(model: string): Encoding | undefined {
  const id = model.slice(model.lastIndexOf("/") + 1).toLowerCase();
  if (!OPENAI_FAMILY.test(id)) return undefined;
  const known = (modelToEncodingMap as Record<string, string>)[id];
  if (known === "o200k_harmony" || known === "cl100k_base" || known === "p50k_base" || known === "r50k_base") return known;
  // gpt-4 and gpt-3.5 snapshots absent from the table are cl100k_base; everything newer is o200k.
  if (!known && /^gpt-(4|3\.5)(-|$)/.test(id) && !/^gpt-4(o|\.)/.test(id)) return "cl100k_base";
  return "o200k_base";
}

const loaded = new Map<Encoding, Promise<Counter>>();

/** Each encoding's rank table is several MB, so it loads on first use, once. */
function counterFor(encoding: Encoding): Promise<Counter> {
  let counter = loaded.get(encoding);
  if (!counter) {
    counter = importEncoding(encoding).then((mod) => {
      // Special-token text such as "<|endoftext|>" in a prompt is ordinary text to count, not an error.
      const options = { disallowedSpecial: new Set<string>() };
      return (text: string) => mod.countTokens(text, options);
    });
    loaded.set(encoding, counter);
  }
  return counter;
}

function importEncoding(encoding: Encoding) {
  switch (encoding) {
    case "o200k_base":
      return import("gpt-tokenizer/encoding/o200k_base");
    case "o200k_harmony":
      return import("gpt-tokenizer/encoding/o200k_harmony");
    case "cl100k_base":
      return import("gpt-tokenizer/encoding/cl100k_base");
    case "p50k_base":
      return import("gpt-tokenizer/encoding/p50k_base");
    case "r50k_base":
      return import("gpt-tokenizer/encoding/r50k_base");
  }
}

/** Tokens of a prompt for a model: exact for OpenAI families, estimated for the rest. */
export async function countPromptTokens(text: string, model: string): Promise<TokenCount> {
  const encoding = openAiEncoding(model);
  if (!encoding) return { tokens: estimateTokens(text), method: ESTIMATE_METHOD };
  const count = await counterFor(encoding);
  return { tokens: count(text), method: `tokenizer:${encoding}` };
}
