import { z } from "zod";
import { LiteHttpError } from "./http.js";

// Unknown fields are dropped, not refused: contract changes within v1 are additive.
const idempotencyKeyField = z.string().min(1).max(255).optional();
const text = (max: number) => z.string().max(max);
const required = (max: number) => z.string({ required_error: "is required", invalid_type_error: "must be a string" }).trim().min(1, "must not be empty").max(max);

export const createTaskBody = z.object({
  title: required(500),
  description: text(100_000).nullish(),
  status: z.string().trim().min(1).max(64).optional(),
  metadata: z.record(z.unknown()).nullish(),
  idempotency_key: idempotencyKeyField,
});

export const postMessageBody = z.object({
  task_id: required(200),
  content: z.string({ required_error: "is required", invalid_type_error: "must be a string" }).min(1, "must not be empty").max(500_000),
  actor_type: z.enum(["agent", "user"]).optional(),
  actor_id: text(200).nullish(),
  agent_role: text(200).nullish(),
  attachments: z.union([z.record(z.unknown()), z.array(z.unknown())]).nullish(),
  idempotency_key: idempotencyKeyField,
});

export const createDocumentBody = z.object({
  task_id: required(200),
  title: required(500),
  content: z.string({ required_error: "is required", invalid_type_error: "must be a string" }).min(1, "must not be empty").max(500_000),
  doc_type: z.string().trim().min(1).max(64).optional(),
  idempotency_key: idempotencyKeyField,
});

export const callToolBody = z.object({
  arguments: z.record(z.unknown()).default({}),
  trace_id: text(200).nullish(),
  tenant_id: text(200).nullish(),
  workspace_id: text(200).nullish(),
  idempotency_key: idempotencyKeyField,
});

/** Parses with `schema` or answers 400 naming the first bad field. */
export function parseBody<S extends z.ZodTypeAny>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.join(".") || "body";
  throw new LiteHttpError(400, "invalid_payload", `invalid payload: ${field} ${issue?.message ?? "is invalid"}`, {
    field,
    issues: result.error.issues.map((i) => ({ field: i.path.join("."), message: i.message })),
  });
}
