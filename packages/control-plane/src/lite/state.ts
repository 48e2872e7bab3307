import { createHash } from "node:crypto";
import canonicalize from "canonicalize";

/** Who owns a record: a user of a tenant (the agent token's tenant_id and user_id). */
export interface Owner {
  tenantId: string;
  userId: string;
}

export interface StoredTask {
  id: string;
  tenant_id: string;
  user_id: string;
  title: string;
  status: string;
  description: string | null;
  metadata: Record<string, unknown> | null;
  created_at: string;
  /** Creation order; the list cursor is built from it. */
  seq: number;
}

export interface StoredMessage {
  id: string;
  user_id: string;
  task_id: string;
  content: string;
  actor_type: "agent" | "user";
  actor_id: string | null;
  agent_role: string | null;
  attachments: unknown;
  created_at: string;
}

export interface StoredDocument {
  id: string;
  user_id: string;
  task_id: string;
  title: string;
  content: string;
  doc_type: string;
  created_at: string;
}

export interface Customer {
  id: string;
  name: string;
  email?: string;
  [field: string]: unknown;
}

export interface ToolCallRecord {
  name: string;
  tenant_id: string;
  user_id: string;
  arguments: Record<string, unknown>;
  trace_id: string | null;
}

/** One request as the backend saw it; lets tests assert what did (or did not) leave Clasper. */
export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  tenant_id: string | null;
  user_id: string | null;
  idempotency_key: string | null;
  trace_id: string | null;
  /** Answered from the idempotency store. */
  replayed: boolean;
  /** The injected fault that shaped this request, if any. */
  fault: string | null;
}

/** A create remembered under its key; `body` settles when the create has (or failed to) run. */
export interface StoredResponse {
  bodyHash: string;
  body: Promise<unknown>;
}

/** Everything mission-control-lite holds, in memory; exposed so tests can look inside. */
export class LiteState {
  readonly tasks: StoredTask[] = [];
  readonly messages: StoredMessage[] = [];
  readonly documents: StoredDocument[] = [];
  readonly toolCalls: ToolCallRecord[] = [];
  readonly requests: RequestRecord[] = [];
  /** Customers per owner (tenant and user), for the `lookup_customer` tool. */
  private readonly customers = new Map<string, Customer[]>();
  private readonly idempotency = new Map<string, StoredResponse>();
  private seq = 0;

  nextSeq(): number {
    return ++this.seq;
  }

  setCustomers(owner: Owner, customers: readonly Customer[]): void {
    this.customers.set(ownerKey(owner), [...customers]);
  }

  customersOf(owner: Owner): readonly Customer[] {
    return this.customers.get(ownerKey(owner)) ?? [];
  }

  /** The owner's tasks: user ids are unique only within a tenant, so both must match. */
  tasksOf(owner: Owner): StoredTask[] {
    return this.tasks.filter((t) => owns(owner, t));
  }

  /** A task the caller owns; another user's or tenant's task is indistinguishable from a missing one. */
  findTask(owner: Owner, id: string): StoredTask | undefined {
    return this.tasks.find((t) => t.id === id && owns(owner, t));
  }

  /**
   * Contract §7.4 with one deliberate difference from the v1 references: keys are scoped per
   * tenant and user (and per resource), so one tenant can neither collide with nor replay
   * another's response.
   */
  recall(owner: Owner, resource: string, key: string): StoredResponse | undefined {
    return this.idempotency.get(idempotencyScope(owner, resource, key));
  }

  remember(owner: Owner, resource: string, key: string, entry: StoredResponse): void {
    this.idempotency.set(idempotencyScope(owner, resource, key), entry);
  }

  /** Drops `entry` (a create that failed), so the key can be used again. */
  forget(owner: Owner, resource: string, key: string, entry: StoredResponse): void {
    const scope = idempotencyScope(owner, resource, key);
    if (this.idempotency.get(scope) === entry) this.idempotency.delete(scope);
  }

  clear(): void {
    this.tasks.length = 0;
    this.messages.length = 0;
    this.documents.length = 0;
    this.toolCalls.length = 0;
    this.requests.length = 0;
    this.idempotency.clear();
  }
}

function owns(owner: Owner, record: { tenant_id: string; user_id: string }): boolean {
  return record.tenant_id === owner.tenantId && record.user_id === owner.userId;
}

function ownerKey(owner: Owner): string {
  return JSON.stringify([owner.tenantId, owner.userId]);
}

function idempotencyScope(owner: Owner, resource: string, key: string): string {
  return JSON.stringify([owner.tenantId, owner.userId, resource, key]);
}

/** SHA-256 over the RFC 8785 canonical JSON of the body, so key order and spacing never matter. */
export function bodyHash(body: unknown): string {
  return createHash("sha256").update(canonicalize(body) ?? "").digest("hex");
}
