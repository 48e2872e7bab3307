import type { ScriptedTurn } from "./types.js";

export const DEFAULT_REPLY = "This is the stub provider's default reply.";

/** A scripted turn with every gap filled in, ready for a protocol to render. */
export interface ResolvedTurn {
  /** Sequence number of the response on this server; makes every generated id unique and stable. */
  seq: number;
  model: string;
  createdSeconds: number;
  text: string;
  toolCalls: { id: string | undefined; name: string; argumentsJson: string }[];
  usage: { input: number; output: number; cacheRead: number; cacheWrite: number; reasoning: number };
  /** Neutral ("stop" | "length" | "tool_use" | "content_filter") or a protocol's raw value. */
  finish: string;
}

export function resolveTurn(turn: ScriptedTurn, body: unknown, seq: number): ResolvedTurn {
  const toolCalls = (turn.toolCalls ?? []).map((call) => ({
    id: call.id,
    name: call.name,
    argumentsJson: JSON.stringify(call.arguments),
  }));
  const text = turn.text ?? (toolCalls.length > 0 ? "" : DEFAULT_REPLY);
  const model = typeof (body as { model?: unknown })?.model === "string" ? (body as { model: string }).model : "stub-model";
  const generated = text.length + toolCalls.reduce((sum, call) => sum + call.name.length + call.argumentsJson.length, 0);
  const usage = {
    // Roughly four characters per token, so unscripted turns still report plausible figures.
    input: turn.usage?.input ?? Math.max(1, Math.ceil(JSON.stringify(body ?? "").length / 4)),
    output: turn.usage?.output ?? Math.max(1, Math.ceil(generated / 4)),
    cacheRead: turn.usage?.cacheRead ?? 0,
    cacheWrite: turn.usage?.cacheWrite ?? 0,
    reasoning: turn.usage?.reasoning ?? 0,
  };
  const finish = turn.finishReason ?? (toolCalls.length > 0 ? "tool_use" : "stop");
  return { seq, model, createdSeconds: Math.floor(Date.now() / 1000), text, toolCalls, usage, finish };
}

/** Maps a neutral finish reason to a protocol's value; raw values pass through. */
export function mapFinish(finish: string, table: Record<"stop" | "length" | "tool_use" | "content_filter", string>): string {
  return (table as Record<string, string>)[finish] ?? finish;
}

/**
 * Splits text into up to `parts` pieces (on word boundaries for prose), so clients see several
 * deltas and have to assemble them, as with a real model.
 */
export function pieces(text: string, parts = 4): string[] {
  if (text.length === 0) return [];
  const words = text.match(/\S+\s*|\s+/g) ?? [text];
  const tokens = words.length >= parts ? words : Array.from(text);
  const size = Math.ceil(tokens.length / parts);
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i += size) out.push(tokens.slice(i, i + size).join(""));
  return out;
}

/** JSON arguments are cut at arbitrary characters, as providers do. */
export function jsonPieces(json: string, parts = 3): string[] {
  const size = Math.max(1, Math.ceil(json.length / parts));
  const out: string[] = [];
  for (let i = 0; i < json.length; i += size) out.push(json.slice(i, i + size));
  return out;
}
