import { getModel, stream, Type, type Api, type AssistantMessage, type AssistantMessageEvent, type Context, type Model } from "@mariozechner/pi-ai";
import type { StubProtocol, StubProvider } from "../src/index.js";

export const PROTOCOLS: StubProtocol[] = ["openai-completions", "openai-responses", "anthropic-messages"];

/** A catalogue model of pi-ai, pointed at the stub: this is what the runtime does with LLM_BASE_URL. */
export function modelFor(protocol: StubProtocol, stub: StubProvider): Model<Api> {
  switch (protocol) {
    case "openai-completions":
      return { ...getModel("openai", "gpt-4o-mini"), api: "openai-completions", baseUrl: `${stub.url}/v1` };
    case "openai-responses":
      return { ...getModel("openai", "gpt-4o-mini"), baseUrl: `${stub.url}/v1` };
    case "anthropic-messages":
      return { ...getModel("anthropic", "claude-haiku-4-5"), baseUrl: stub.url };
  }
}

export const context: Context = {
  systemPrompt: "You are a test agent.",
  messages: [{ role: "user", content: "Create a task called Ship it.", timestamp: 0 }],
  tools: [
    {
      name: "create_task",
      description: "Creates a task",
      parameters: Type.Object({ title: Type.String(), priority: Type.Optional(Type.Number()) }),
    },
  ],
};

export interface Run {
  message: AssistantMessage;
  events: AssistantMessageEvent[];
}

/** Runs pi-ai's real `stream` and keeps every event along with the final message. */
export async function run(model: Model<Api>, options: Record<string, unknown> = {}): Promise<Run> {
  const events: AssistantMessageEvent[] = [];
  const s = stream(model, context, { apiKey: "test-key", ...options });
  for await (const event of s) events.push(event);
  return { message: await s.result(), events };
}

export function textOf(message: AssistantMessage): string {
  return message.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}
