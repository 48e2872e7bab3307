import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import { principalOf } from "@clasper/auth";
import {
  SendMessageResponseSchema,
  SendStatus,
  StreamMessageResponseSchema,
  type SendMessageRequest,
  type SendMessageResponse,
  type StreamMessageRequest,
  type StreamMessageResponse,
} from "@clasper/proto";
import { agentInput, errorCodeOf, executionError, runAgent, type AgentEvent, type AgentRequest } from "../execution/agent.js";
import { costOf, tokenUsageOf } from "../llm/usage.js";
import type { RuntimeContext } from "../runtime-context.js";
import { EventQueue } from "./event-queue.js";

function agentRequest(source: AgentRequest["source"], req: SendMessageRequest | StreamMessageRequest, ctx: HandlerContext): AgentRequest {
  return {
    source,
    tenantId: principalOf(ctx).tenantId,
    userId: req.userId,
    sessionKey: req.sessionKey,
    message: req.message,
    messages: req.messages,
    taskId: req.taskId,
    taskTitle: req.taskTitle,
    taskDescription: req.taskDescription,
    taskMetadata: req.taskMetadata,
    metadata: req.metadata,
    webhook: "webhook" in req ? req.webhook : undefined,
    workspaceId: req.workspaceId,
    environment: req.environment,
    decisionToken: req.decisionToken,
  };
}

function jsonValue(value: unknown) {
  return fromJson(ValueSchema, (value ?? null) as JsonValue);
}

function streamEvent(event: AgentEvent): StreamMessageResponse {
  switch (event.type) {
    case "start":
      return create(StreamMessageResponseSchema, { event: { case: "start", value: { traceId: event.traceId, executionId: event.executionId, taskId: event.taskId } } });
    case "chunk":
      return create(StreamMessageResponseSchema, { event: { case: "chunk", value: { data: event.data } } });
    case "tool_call":
      return create(StreamMessageResponseSchema, {
        event: { case: "toolCall", value: { toolCallId: event.id, toolName: event.name, arguments: jsonValue(event.arguments) } },
      });
    case "tool_result":
      return create(StreamMessageResponseSchema, {
        event: { case: "toolResult", value: { toolCallId: event.id, toolName: event.name, success: event.success, result: jsonValue(event.result), error: event.error ?? "" } },
      });
  }
}

/** SendMessage and StreamMessage: one agent turn, answered whole or as events. */
export class AgentHandlers {
  constructor(private readonly rt: RuntimeContext) {}

  async sendMessage(req: SendMessageRequest, ctx: HandlerContext): Promise<SendMessageResponse> {
    const outcome = await runAgent(this.rt, agentRequest("send", req, ctx), ctx.signal);
    if (outcome.status === "approval_required") {
      return create(SendMessageResponseSchema, {
        status: SendStatus.APPROVAL_REQUIRED,
        traceId: outcome.traceId,
        executionId: outcome.executionId,
        decisionId: outcome.decisionId,
        ...(outcome.expiresAt ? { decisionExpiresAt: timestampFromDate(outcome.expiresAt) } : {}),
      });
    }
    return create(SendMessageResponseSchema, {
      status: SendStatus.OK,
      taskId: outcome.taskId,
      traceId: outcome.traceId,
      executionId: outcome.executionId,
      response: outcome.response,
      usage: tokenUsageOf(outcome.meter),
      cost: costOf(outcome.meter, outcome.model),
      contextWarning: outcome.contextWarning ?? "",
    });
  }

  /**
   * The execution runs as its own task feeding a queue, so its async context (trace span, caller
   * identity) is the handler's and not the stream reader's; a reader that goes away aborts it.
   */
  async *streamMessage(req: StreamMessageRequest, ctx: HandlerContext): AsyncIterable<StreamMessageResponse> {
    const request = agentRequest("stream", req, ctx);
    // Refused before the first event: the gateway answers these as 400s, not as an error event.
    agentInput(this.rt, request);
    const queue = new EventQueue<StreamMessageResponse>();
    const abort = new AbortController();
    const signal = AbortSignal.any([ctx.signal, abort.signal]);
    const run = runAgent(this.rt, request, signal, (event) => queue.push(streamEvent(event))).then(
      (outcome) => {
        if (outcome.status === "approval_required") {
          queue.push(create(StreamMessageResponseSchema, { event: { case: "error", value: { error: "approval required", code: "approval_required", decisionId: outcome.decisionId } } }));
        } else {
          queue.push(
            create(StreamMessageResponseSchema, {
              event: { case: "done", value: { response: outcome.response, usage: tokenUsageOf(outcome.meter), cost: costOf(outcome.meter, outcome.model), contextWarning: outcome.contextWarning ?? "" } },
            }),
          );
        }
      },
      (err: unknown) => {
        const error = executionError(err);
        queue.push(create(StreamMessageResponseSchema, { event: { case: "error", value: { error: error.rawMessage, code: errorCodeOf(error) } } }));
      },
    );
    try {
      yield* queue.drain(run);
    } finally {
      abort.abort();
      await run;
    }
  }
}
