import { jsonPieces, mapFinish, pieces, type ResolvedTurn } from "../turn.js";
import { openAICompletions, openAIError } from "./openai-completions.js";
import { sse, type WireProtocol } from "./protocol.js";

// OpenAI Responses: https://platform.openai.com/docs/api-reference/responses
// (events as parsed by openai@6 and pi-ai's providers/openai-responses-shared.js).

/** Response status and incomplete reason per neutral finish reason. */
const STATUS = { stop: "completed", length: "incomplete", tool_use: "completed", content_filter: "incomplete" };
const INCOMPLETE_REASON: Record<string, string> = { length: "max_output_tokens", content_filter: "content_filter" };

/** `input_tokens` includes cached tokens; Responses has no cache-write field, so writes count as input. */
function responsesUsage(turn: ResolvedTurn): Record<string, unknown> {
  const { input, output, cacheRead, cacheWrite, reasoning } = turn.usage;
  const inputTokens = input + cacheRead + cacheWrite;
  return {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: cacheRead },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: inputTokens + output,
  };
}

interface Items {
  message: Record<string, unknown> | undefined;
  calls: Record<string, unknown>[];
}

/** The output items in their final form; streaming sends them `in_progress` first. */
function outputItems(turn: ResolvedTurn): Items {
  const message =
    turn.text.length > 0
      ? {
          type: "message",
          id: `msg_stub${turn.seq}`,
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: turn.text, annotations: [], logprobs: [] }],
        }
      : undefined;
  const calls = turn.toolCalls.map((call, index) => ({
    type: "function_call",
    id: `fc_stub${turn.seq}_${index}`,
    call_id: call.id ?? `call_stub${turn.seq}_${index}`,
    name: call.name,
    arguments: call.argumentsJson,
    status: "completed",
  }));
  return { message, calls };
}

function responseObject(turn: ResolvedTurn, output: unknown[], done: boolean): Record<string, unknown> {
  const status = done ? mapFinish(turn.finish, STATUS) : "in_progress";
  const reason = INCOMPLETE_REASON[turn.finish];
  return {
    id: `resp_stub${turn.seq}`,
    object: "response",
    created_at: turn.createdSeconds,
    status,
    background: false,
    error: null,
    incomplete_details: done && reason !== undefined ? { reason } : null,
    instructions: null,
    max_output_tokens: null,
    model: turn.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: "default",
    store: false,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1,
    truncation: "disabled",
    usage: done ? responsesUsage(turn) : null,
    metadata: {},
  };
}

export const openAIResponses: WireProtocol = {
  name: "openai-responses",
  path: "/v1/responses",
  requestIdHeader: "x-request-id",
  authError: openAICompletions.authError,

  invalid(body) {
    if (typeof body?.model !== "string") return "Missing required parameter: 'model'.";
    if (typeof body.input !== "string" && !Array.isArray(body.input)) return "Missing required parameter: 'input'.";
    return undefined;
  },

  json(turn) {
    const { message, calls } = outputItems(turn);
    return responseObject(turn, [...(message ? [message] : []), ...calls], true);
  },

  events(turn) {
    let sequence = 0;
    const event = (type: string, fields: Record<string, unknown>): string =>
      sse({ type, sequence_number: sequence++, ...fields }, type);
    const { message, calls } = outputItems(turn);
    const frames = [
      event("response.created", { response: responseObject(turn, [], false) }),
      event("response.in_progress", { response: responseObject(turn, [], false) }),
    ];
    let outputIndex = 0;
    if (message) {
      const itemId = message.id;
      const part = { type: "output_text", text: "", annotations: [], logprobs: [] };
      const at = { item_id: itemId, output_index: outputIndex, content_index: 0 };
      frames.push(
        event("response.output_item.added", {
          output_index: outputIndex,
          item: { ...message, status: "in_progress", content: [] },
        }),
        event("response.content_part.added", { ...at, part }),
      );
      for (const delta of pieces(turn.text)) frames.push(event("response.output_text.delta", { ...at, delta, logprobs: [] }));
      frames.push(
        event("response.output_text.done", { ...at, text: turn.text, logprobs: [] }),
        event("response.content_part.done", { ...at, part: { ...part, text: turn.text } }),
        event("response.output_item.done", { output_index: outputIndex, item: message }),
      );
      outputIndex++;
    }
    for (const call of calls) {
      const at = { item_id: call.id, output_index: outputIndex };
      frames.push(event("response.output_item.added", { output_index: outputIndex, item: { ...call, arguments: "", status: "in_progress" } }));
      for (const delta of jsonPieces(call.arguments as string)) frames.push(event("response.function_call_arguments.delta", { ...at, delta }));
      frames.push(
        event("response.function_call_arguments.done", { ...at, name: call.name, arguments: call.arguments }),
        event("response.output_item.done", { output_index: outputIndex, item: call }),
      );
      outputIndex++;
    }
    const output = [...(message ? [message] : []), ...calls];
    const final = responseObject(turn, output, true);
    frames.push(event(final.status === "incomplete" ? "response.incomplete" : "response.completed", { response: final }));
    return frames;
  },

  errorBody: openAIError,
};
