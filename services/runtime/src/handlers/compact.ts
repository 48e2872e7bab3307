import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext } from "@connectrpc/connect";
import { clasperError } from "@clasper/core";
import { ChatMessageSchema, CompactMessagesResponseSchema, MessageRole, type CompactMessagesRequest, type CompactMessagesResponse } from "@clasper/proto";
import { costOf, emptyMeter, tokenUsageOf } from "../llm/usage.js";
import type { RuntimeContext } from "../runtime-context.js";
import { oneShotWorkspace, runOneShot } from "./one-shot.js";

const ROLE_NAME: Record<number, string> = { [MessageRole.USER]: "USER", [MessageRole.ASSISTANT]: "ASSISTANT", [MessageRole.SYSTEM]: "SYSTEM" };

/** POST /compact: all but the last `keep_recent` turns become one summary system message. */
export class CompactHandlers {
  constructor(private readonly rt: RuntimeContext) {}

  async compactMessages(req: CompactMessagesRequest, ctx: HandlerContext): Promise<CompactMessagesResponse> {
    const keep = req.keepRecent ?? 2;
    const original = req.messages.length;
    if (original <= keep) {
      return create(CompactMessagesResponseSchema, { compactedMessages: req.messages, usage: tokenUsageOf(emptyMeter()), cost: costOf(emptyMeter(), ""), originalCount: original, compactedCount: original });
    }
    // slice(original - keep), not slice(-keep): keep_recent = 0 summarizes everything.
    const older = req.messages.slice(0, original - keep);
    const kept = req.messages.slice(original - keep);
    const transcript = older.map((m) => `${ROLE_NAME[m.role] ?? "USER"}: ${m.content}`).join("\n\n");
    const instructions = req.instructions ? `\n\nAdditional instructions: ${req.instructions}` : "";
    const prompt = `Summarize the following conversation so it can replace the original messages. Keep decisions, facts, open questions and commitments.${instructions}\n\n${transcript}`;
    const result = await runOneShot<string>(
      this.rt,
      {
        source: "compact",
        workspaceId: oneShotWorkspace(ctx),
        model: this.rt.config.LLM_MODEL_CHEAP ?? this.rt.config.LLM_MODEL_DEFAULT,
        temperature: 0.3,
        estimateText: prompt,
        calls: 1,
        run: (call) => call({ systemPrompt: "You summarize conversations faithfully and concisely.", messages: [{ role: "user", content: prompt, timestamp: Date.now() }] }),
      },
      ctx.signal,
    );
    const summary = result.value.trim();
    if (!summary) throw clasperError(Code.Unavailable, "the model returned an empty summary", { reason: "provider_error" });
    const compacted = [create(ChatMessageSchema, { role: MessageRole.SYSTEM, content: `[Previous conversation summary]\n${summary}` }), ...kept];
    return create(CompactMessagesResponseSchema, {
      compactedMessages: compacted,
      usage: tokenUsageOf(result.meter),
      cost: costOf(result.meter, result.model),
      originalCount: original,
      compactedCount: compacted.length,
    });
  }
}
