import { jsonPieces, mapFinish, pieces, type ResolvedTurn } from "../turn.js";
import { bearer, defaultErrorMessage, sse, type WireProtocol } from "./protocol.js";

// OpenAI Chat Completions: https://platform.openai.com/docs/api-reference/chat
// (shapes as parsed by openai@6 and pi-ai's providers/openai-completions.js).

const FINISH = { stop: "stop", length: "length", tool_use: "tool_calls", content_filter: "content_filter" };

function completionId(turn: ResolvedTurn): string {
  return `chatcmpl-stub${turn.seq}`;
}

function toolCallId(turn: ResolvedTurn, index: number): string {
  return turn.toolCalls[index]?.id ?? `call_stub${turn.seq}_${index}`;
}

/**
 * `prompt_tokens` includes cached tokens. Cache writes are not part of OpenAI's own schema; we
 * report them as OpenRouter does (`cache_write_tokens`, also counted in `cached_tokens`), which is
 * the convention pi-ai normalises.
 */
export function chatUsage(turn: ResolvedTurn): Record<string, unknown> {
  const { input, output, cacheRead, cacheWrite, reasoning } = turn.usage;
  const promptTokens = input + cacheRead + cacheWrite;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: output,
    total_tokens: promptTokens + output,
    prompt_tokens_details: {
      cached_tokens: cacheRead + cacheWrite,
      audio_tokens: 0,
      ...(cacheWrite > 0 ? { cache_write_tokens: cacheWrite } : {}),
    },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** OpenAI's error body, shared by Chat Completions and Responses. */
export function openAIError(status: number, message?: string): unknown {
  const type = status === 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error";
  const code = status === 429 ? "rate_limit_exceeded" : status === 401 ? "invalid_api_key" : null;
  return { error: { message: message ?? defaultErrorMessage(status), type, param: null, code } };
}

export const openAICompletions: WireProtocol = {
  name: "openai-completions",
  path: "/v1/chat/completions",
  requestIdHeader: "x-request-id",

  authError(headers) {
    return bearer(headers) === undefined ? "You didn't provide an API key (stub provider)." : undefined;
  },

  invalid(body) {
    if (typeof body?.model !== "string") return "you must provide a model parameter";
    if (!Array.isArray(body.messages) || body.messages.length === 0) return "'messages' must be a non-empty array";
    return undefined;
  },

  json(turn) {
    const toolCalls = turn.toolCalls.map((call, index) => ({
      id: toolCallId(turn, index),
      type: "function",
      function: { name: call.name, arguments: call.argumentsJson },
    }));
    return {
      id: completionId(turn),
      object: "chat.completion",
      created: turn.createdSeconds,
      model: turn.model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: turn.text.length > 0 ? turn.text : null,
            refusal: null,
            annotations: [],
            ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
          },
          logprobs: null,
          finish_reason: mapFinish(turn.finish, FINISH),
        },
      ],
      usage: chatUsage(turn),
      service_tier: "default",
      system_fingerprint: "fp_stub",
    };
  },

  events(turn, body) {
    const includeUsage = body?.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
      sse({
        id: completionId(turn),
        object: "chat.completion.chunk",
        created: turn.createdSeconds,
        model: turn.model,
        service_tier: "default",
        system_fingerprint: "fp_stub",
        choices,
        // With include_usage OpenAI sends `usage: null` on every chunk but the last.
        ...(includeUsage ? { usage: null } : {}),
        ...extra,
      });
    const delta = (value: Record<string, unknown>, finishReason: string | null = null): unknown => ({
      index: 0,
      delta: value,
      logprobs: null,
      finish_reason: finishReason,
    });

    const frames = [chunk([delta({ role: "assistant", content: "", refusal: null })])];
    for (const piece of pieces(turn.text)) frames.push(chunk([delta({ content: piece })]));
    turn.toolCalls.forEach((call, index) => {
      frames.push(
        chunk([
          delta({
            tool_calls: [{ index, id: toolCallId(turn, index), type: "function", function: { name: call.name, arguments: "" } }],
          }),
        ]),
      );
      for (const piece of jsonPieces(call.argumentsJson)) {
        frames.push(chunk([delta({ tool_calls: [{ index, function: { arguments: piece } }] })]));
      }
    });
    frames.push(chunk([delta({}, mapFinish(turn.finish, FINISH))]));
    if (includeUsage) frames.push(chunk([], { usage: chatUsage(turn) }));
    frames.push(sse("[DONE]"));
    return frames;
  },

  errorBody(status, message) {
    return openAIError(status, message);
  },
};
