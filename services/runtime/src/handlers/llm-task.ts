import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, type HandlerContext } from "@connectrpc/connect";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { clasperError, invalidField } from "@clasper/core";
import { RunLlmTaskResponseSchema, type RunLlmTaskRequest, type RunLlmTaskResponse } from "@clasper/proto";
import { costOf, tokenUsageOf } from "../llm/usage.js";
import type { RuntimeContext } from "../runtime-context.js";
import { oneShotWorkspace, runOneShot } from "./one-shot.js";

const ajv = new Ajv({ allErrors: true, strict: false });

const SYSTEM = "You are a JSON-only function. Return ONLY valid JSON: no code fences, no commentary.";

/** The JSON in a reply, code fences stripped; undefined when it does not parse. */
export function parseJsonReply(text: string): { ok: true; value: JsonValue } | { ok: false } {
  const fenced = /^\s*```(?:json)?\s*\n?([\s\S]*?)\n?```\s*$/i.exec(text);
  try {
    return { ok: true, value: JSON.parse(fenced ? fenced[1]! : text) as JsonValue };
  } catch {
    return { ok: false };
  }
}

function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.message ?? "is invalid"}`);
}

/** POST /llm-task: JSON-only output, validated by ajv against the schema, one repair attempt. */
export class LlmTaskHandlers {
  constructor(private readonly rt: RuntimeContext) {}

  async runLlmTask(req: RunLlmTaskRequest, ctx: HandlerContext): Promise<RunLlmTaskResponse> {
    let validate: ValidateFunction | undefined;
    if (req.schema) {
      try {
        validate = ajv.compile(req.schema as JsonObject);
      } catch (err) {
        throw invalidField("schema", `not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const schemaText = req.schema ? `\n\nThe output must satisfy this JSON Schema:\n${JSON.stringify(req.schema, null, 2)}` : "";
    const systemPrompt = SYSTEM + schemaText;
    const user = req.input !== undefined ? `${req.prompt}\n\nInput:\n${JSON.stringify(toJson(ValueSchema, req.input), null, 2)}` : req.prompt;
    const check = (text: string): { value?: JsonValue; problems: string[] } => {
      const parsed = parseJsonReply(text);
      if (!parsed.ok) return { problems: [`invalid JSON returned: ${text.slice(0, 100)}`] };
      if (validate && !validate(parsed.value)) return { value: parsed.value, problems: describeErrors(validate.errors) };
      return { value: parsed.value, problems: [] };
    };
    const result = await runOneShot<{ value: JsonValue; problems: string[] }>(
      this.rt,
      {
        source: "llm_task",
        workspaceId: oneShotWorkspace(ctx),
        model: req.model || this.rt.config.LLM_MODEL_DEFAULT,
        temperature: req.temperature ?? 0.3,
        maxTokens: req.maxTokens,
        estimateText: systemPrompt + user,
        calls: 2,
        run: async (call) => {
          const messages = [{ role: "user" as const, content: user, timestamp: Date.now() }];
          const first = await call({ systemPrompt, messages });
          const firstCheck = check(first);
          if (firstCheck.problems.length === 0) return { value: firstCheck.value!, problems: [] };
          // One repair: the model sees its output and what was wrong with it.
          const repair = `Your previous output was not acceptable:\n${firstCheck.problems.join("\n")}\n\nPrevious output:\n${first.slice(0, 20_000)}\n\nReturn corrected JSON only.`;
          const second = await call({ systemPrompt, messages: [...messages, { role: "user", content: repair, timestamp: Date.now() }] });
          const secondCheck = check(second);
          if (secondCheck.value === undefined) {
            throw clasperError(Code.FailedPrecondition, `LLM task failed: ${secondCheck.problems[0]} (after one repair attempt)`, { reason: "invalid_llm_output", httpStatus: 422 });
          }
          return { value: secondCheck.value, problems: secondCheck.problems };
        },
      },
      ctx.signal,
    );
    if (result.value.problems.length > 0) {
      throw clasperError(Code.FailedPrecondition, `LLM task failed: output does not satisfy the schema after one repair attempt: ${result.value.problems.slice(0, 5).join("; ")}`, {
        reason: "schema_validation_failed",
        httpStatus: 422,
      });
    }
    return create(RunLlmTaskResponseSchema, {
      output: fromJson(ValueSchema, result.value.value),
      validated: validate !== undefined,
      usage: tokenUsageOf(result.meter),
      cost: costOf(result.meter, result.model),
      traceId: result.traceId,
    });
  }
}
