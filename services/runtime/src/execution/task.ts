import { Code } from "@connectrpc/connect";
import { clasperError } from "@clasper/core";
import { idempotencyKey, withRetry, type ControlPlaneClient } from "@clasper/control-plane";

export interface TaskSpec {
  taskId: string;
  title: string;
  description: string;
  metadata: Record<string, unknown> | undefined;
}

/** Runtime-made Control Plane calls are step 0 of the trace; tool calls are steps 1.. */
export const RUNTIME_STEP = 0;
export const CALL = { createTask: 0, postReply: 1, planDocument: 2 } as const;

/** The task named by id, else by title (request, else CLASPER_DEFAULT_TASK), else 400. */
export function taskSpec(req: { taskId: string; taskTitle: string; taskDescription: string; taskMetadata?: Record<string, unknown> }, defaultTask: string | undefined): TaskSpec {
  if (req.taskId) return { taskId: req.taskId, title: "", description: "", metadata: undefined };
  const title = req.taskTitle || defaultTask;
  if (!title) {
    throw clasperError(Code.InvalidArgument, "Task not specified. Provide task_id, task_title, or set CLASPER_DEFAULT_TASK env var.", {
      reason: "task_not_specified",
      field: "task_title",
    });
  }
  return { taskId: "", title, description: req.taskDescription || `Agent thread: ${title}`, metadata: req.taskMetadata ?? { type: "agent_thread" } };
}

/**
 * Finds the task by exact title among the user's tasks, creating it only when something has to
 * be posted (so a HEARTBEAT_OK turn leaves the backend untouched). The create carries the
 * execution's idempotency key and is retried once with it.
 */
export class TaskResolver {
  private found: string | undefined;
  private creating: Promise<string> | undefined;

  constructor(
    private readonly client: ControlPlaneClient,
    private readonly spec: TaskSpec,
    private readonly traceId: string,
    private readonly signal: AbortSignal,
  ) {
    if (spec.taskId) this.found = spec.taskId;
  }

  /** The task id when it already exists (looked up once); undefined when it would be created. */
  async lookup(): Promise<string | undefined> {
    if (this.found) return this.found;
    const page = await this.client.listTasks({ limit: 50 }, { signal: this.signal, traceId: this.traceId });
    this.found = page.items.find((t) => t.title === this.spec.title)?.id;
    return this.found;
  }

  async ensure(): Promise<string> {
    const existing = await this.lookup();
    if (existing) return existing;
    this.creating ??= (async () => {
      const options = { idempotencyKey: idempotencyKey(this.traceId, RUNTIME_STEP, CALL.createTask), traceId: this.traceId, signal: this.signal };
      const task = await withRetry(
        () => this.client.createTask({ title: this.spec.title, description: this.spec.description, status: "in_progress", ...(this.spec.metadata ? { metadata: this.spec.metadata } : {}) }, options),
        { attempts: 2, signal: this.signal },
      );
      this.found = task.id;
      return task.id;
    })();
    return this.creating;
  }
}
