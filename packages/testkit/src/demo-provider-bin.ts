#!/usr/bin/env node
// A stand-in LLM for trying Clasper without a provider account: the stub provider with a
// responder that behaves like a small agent. Its first answer to a user message asks for the
// `create_task` tool (titled after the message); once it sees the tool's result, it replies in
// text. It speaks the OpenAI Chat Completions, OpenAI Responses and Anthropic Messages protocols.
// Env: STUB_PROVIDER_PORT (default 9100).
import { startStubProvider, type RecordedRequest, type ScriptedTurn } from "./index.js";

/** Tool results come back as role "tool" (Chat), function_call_output (Responses) or tool_result (Anthropic). */
function hasToolResult(req: RecordedRequest): boolean {
  const body = JSON.stringify(req.body ?? {});
  return body.includes('"role":"tool"') || body.includes("function_call_output") || body.includes('"tool_result"');
}

/** The newest user text of the request, whatever the protocol. */
function lastUserText(req: RecordedRequest): string {
  const body = (req.body ?? {}) as { messages?: { role: string; content: unknown }[]; input?: unknown };
  const items = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? (body.input as { role: string; content: unknown }[]) : [];
  const user = [...items].reverse().find((m) => m && m.role === "user");
  const content = user?.content;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    const text = content.map((part: { text?: string }) => part?.text ?? "").join(" ").trim();
    if (text) return text;
  }
  return "New request";
}

const port = Number(process.env.STUB_PROVIDER_PORT ?? 9100);
const stub = await startStubProvider({ port });
stub.setResponder((req): ScriptedTurn => {
  if (hasToolResult(req)) {
    return { text: "I created a task for this and will keep it updated.", usage: { input: 900, output: 40 } };
  }
  const title = lastUserText(req).replace(/\s+/g, " ").slice(0, 80);
  return { toolCalls: [{ name: "create_task", arguments: { title, description: "Created by the Clasper demo agent" } }], usage: { input: 800, output: 30 } };
});
process.stdout.write(`stub LLM provider listening on ${stub.url} (OpenAI: ${stub.url}/v1, Anthropic: ${stub.url})\n`);
const stop = () => void stub.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
