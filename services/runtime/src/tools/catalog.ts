import type { ControlPlaneClient, CreateOptions, ToolDescriptor } from "@clasper/control-plane";

/** A tool the model may be offered: its JSON Schema and how it runs against the Control Plane. */
export interface ToolDefinition {
  readonly name: string;
  readonly description: string;
  readonly parameters: Record<string, unknown>;
  /** True for the contract operations; false for the backend's own tools (`POST /api/tools/{name}`). */
  readonly builtin: boolean;
  run(client: ControlPlaneClient, args: Record<string, unknown>, ctx: ToolRunContext): Promise<unknown>;
}

export interface ToolRunContext {
  /** The agent role, posted as the message's agent_role. */
  readonly agentRole: string;
  readonly options: CreateOptions;
}

const str = (maxLength: number, description: string) => ({ type: "string", minLength: 1, maxLength, description });

function object(properties: Record<string, unknown>, required: string[]): Record<string, unknown> {
  return { type: "object", properties, required, additionalProperties: false };
}

/** The Control Plane Contract v1 operations, offered as tools (seed §7.3). */
export const BUILTIN_TOOLS: readonly ToolDefinition[] = [
  {
    name: "list_tasks",
    description: "List the user's tasks (id, title, status).",
    parameters: object({ limit: { type: "integer", minimum: 1, maximum: 100, description: "At most this many tasks (default 50)." } }, []),
    builtin: true,
    run: (client, args, ctx) => client.listTasks({ limit: (args["limit"] as number | undefined) ?? 50 }, { signal: ctx.options.signal, traceId: ctx.options.traceId }),
  },
  {
    name: "create_task",
    description: "Create a task for the user.",
    parameters: object(
      {
        title: str(512, "Task title."),
        description: { type: "string", maxLength: 10_000, description: "Task description." },
        status: { type: "string", enum: ["todo", "in_progress", "done", "blocked"], description: "Initial status (default in_progress)." },
      },
      ["title"],
    ),
    builtin: true,
    run: (client, args, ctx) =>
      client.createTask(
        { title: args["title"] as string, description: args["description"] as string | undefined, status: (args["status"] as string | undefined) ?? "in_progress" },
        ctx.options,
      ),
  },
  {
    name: "post_message",
    description: "Post a message to one of the user's tasks.",
    parameters: object({ task_id: str(128, "Task id."), content: str(100_000, "Message text.") }, ["task_id", "content"]),
    builtin: true,
    run: (client, args, ctx) =>
      client.postMessage({ task_id: args["task_id"] as string, content: args["content"] as string, actor_type: "agent", agent_role: ctx.agentRole }, ctx.options),
  },
  {
    name: "create_document",
    description: "Attach a document (e.g. a plan) to one of the user's tasks.",
    parameters: object(
      { task_id: str(128, "Task id."), title: str(512, "Document title."), content: str(200_000, "Document body."), doc_type: { type: "string", maxLength: 64, description: "e.g. plan, note." } },
      ["task_id", "title", "content"],
    ),
    builtin: true,
    run: (client, args, ctx) =>
      client.createDocument(
        { task_id: args["task_id"] as string, title: args["title"] as string, content: args["content"] as string, doc_type: args["doc_type"] as string | undefined },
        ctx.options,
      ),
  },
];

const BUILTIN_NAMES = new Set(BUILTIN_TOOLS.map((t) => t.name));

export function isBuiltinTool(name: string): boolean {
  return BUILTIN_NAMES.has(name);
}

/** A tool the backend lists in `GET /api/tools`. */
export function backendTool(descriptor: ToolDescriptor): ToolDefinition {
  return {
    name: descriptor.name,
    description: descriptor.description,
    parameters: descriptor.parameters && typeof descriptor.parameters === "object" ? descriptor.parameters : { type: "object" },
    builtin: false,
    run: (client, args, ctx) => client.callTool(descriptor.name, args, ctx.options),
  };
}

/**
 * The tools offered to the model: the allowlist of the enabled skills, resolved against the
 * built-ins and, only when the allowlist names a tool that is not one, the backend's list (so an
 * execution without custom tools makes no extra call).
 */
export async function offeredTools(allowed: ReadonlySet<string>, listBackendTools: () => Promise<ToolDescriptor[]>): Promise<ToolDefinition[]> {
  const tools = BUILTIN_TOOLS.filter((t) => allowed.has(t.name));
  if ([...allowed].some((name) => !BUILTIN_NAMES.has(name))) {
    for (const descriptor of await listBackendTools()) {
      if (allowed.has(descriptor.name) && !BUILTIN_NAMES.has(descriptor.name)) tools.push(backendTool(descriptor));
    }
  }
  return tools;
}
