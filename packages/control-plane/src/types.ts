/** Wire types of Control Plane Contract v1 (docs/CONTROL_PLANE.md), as the backend returns them. */

export const CONTRACT_VERSION = "v1";

export interface Capabilities {
  contract_version: string;
  features: {
    tasks: boolean;
    messages: boolean;
    documents: boolean;
    notifications_dispatch: boolean;
    events_sse: boolean;
    heartbeat: boolean;
    standup: boolean;
    tool_requests: boolean;
    [feature: string]: boolean;
  };
}

export interface Task {
  id: string;
  title: string;
  status: string;
  description?: string | null;
  [field: string]: unknown;
}

export interface TaskPage {
  items: Task[];
  next_cursor?: string | null;
}

export interface CreateTaskInput {
  title: string;
  description?: string;
  status?: string;
  metadata?: Record<string, unknown>;
}

export type ActorType = "agent" | "user";

export interface PostMessageInput {
  task_id: string;
  content: string;
  actor_type?: ActorType;
  actor_id?: string;
  agent_role?: string;
  attachments?: Record<string, unknown> | unknown[] | null;
}

export interface Message {
  id: string;
  task_id: string;
  content: string;
  [field: string]: unknown;
}

export interface CreateDocumentInput {
  task_id: string;
  title: string;
  content: string;
  doc_type?: string;
}

export interface Document {
  id: string;
  title: string;
  task_id: string;
  doc_type?: string | null;
  [field: string]: unknown;
}

/** A backend tool as `GET /api/tools` describes it; `parameters` is a JSON Schema. */
export interface ToolDescriptor {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}
