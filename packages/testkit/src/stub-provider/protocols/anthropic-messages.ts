import { jsonPieces, mapFinish, pieces, type ResolvedTurn } from "../turn.js";
import { bearer, defaultErrorMessage, sse, type WireProtocol } from "./protocol.js";

// Anthropic Messages: https://docs.anthropic.com/en/api/messages and /en/api/messages-streaming
// (events as parsed by @anthropic-ai/sdk@0.91 and pi-ai's providers/anthropic.js).

const STOP = { stop: "end_turn", length: "max_tokens", tool_use: "tool_use", content_filter: "refusal" };

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  529: "overloaded_error",
};

/** Anthropic reports reasoning (thinking) tokens inside `output_tokens`; there is no separate field. */
function anthropicUsage(turn: ResolvedTurn): Record<string, unknown> {
  const { input, output, cacheRead, cacheWrite } = turn.usage;
  return {
    input_tokens: input,
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
    output_tokens: output,
    service_tier: "standard",
  };
}

function contentBlocks(turn: ResolvedTurn): Record<string, unknown>[] {
  const blocks: Record<string, unknown>[] = [];
  if (turn.text.length > 0) blocks.push({ type: "text", text: turn.text });
  turn.toolCalls.forEach((call, index) =>
    blocks.push({
      type: "tool_use",
      id: call.id ?? `toolu_stub${turn.seq}_${index}`,
      name: call.name,
      input: JSON.parse(call.argumentsJson) as unknown,
    }),
  );
  return blocks;
}

function message(turn: ResolvedTurn, content: unknown[], stopReason: string | null, usage: Record<string, unknown>) {
  return {
    id: `msg_stub${turn.seq}`,
    type: "message",
    role: "assistant",
    model: turn.model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage,
  };
}

export const anthropicMessages: WireProtocol = {
  name: "anthropic-messages",
  path: "/v1/messages",
  requestIdHeader: "request-id",

  authError(headers) {
    const key = headers["x-api-key"];
    const hasKey = typeof key === "string" && key.length > 0;
    return hasKey || bearer(headers) !== undefined ? undefined : "x-api-key header is required";
  },

  invalid(body) {
    if (typeof body?.model !== "string") return "model: Field required";
    if (!Array.isArray(body.messages)) return "messages: Field required";
    if (typeof body.max_tokens !== "number") return "max_tokens: Field required";
    return undefined;
  },

  json(turn) {
    return message(turn, contentBlocks(turn), mapFinish(turn.finish, STOP), anthropicUsage(turn));
  },

  events(turn) {
    const event = (type: string, fields: Record<string, unknown> = {}): string => sse({ type, ...fields }, type);
    const usage = anthropicUsage(turn);
    // message_start carries the input side; output_tokens grows to its final value in message_delta.
    const frames = [event("message_start", { message: message(turn, [], null, { ...usage, output_tokens: 1 }) }), event("ping")];
    contentBlocks(turn).forEach((block, index) => {
      if (block.type === "text") {
        frames.push(event("content_block_start", { index, content_block: { type: "text", text: "" } }));
        for (const text of pieces(turn.text)) {
          frames.push(event("content_block_delta", { index, delta: { type: "text_delta", text } }));
        }
      } else {
        frames.push(event("content_block_start", { index, content_block: { ...block, input: {} } }));
        const json = JSON.stringify(block.input);
        for (const partial_json of ["", ...jsonPieces(json)]) {
          frames.push(event("content_block_delta", { index, delta: { type: "input_json_delta", partial_json } }));
        }
      }
      frames.push(event("content_block_stop", { index }));
    });
    frames.push(
      event("message_delta", { delta: { stop_reason: mapFinish(turn.finish, STOP), stop_sequence: null }, usage }),
      event("message_stop"),
    );
    return frames;
  },

  errorBody(status, message) {
    const type = ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
    return { type: "error", error: { type, message: message ?? defaultErrorMessage(status) } };
  },
};
