import type { Kysely, Transaction } from "kysely";
import { invalidField } from "@clasper/core";
import { requirePermission, type Principal } from "@clasper/auth";
import type { Override } from "@clasper/proto";
import { overrideReasons } from "./policy-convert.js";
import type { GovernanceDatabase } from "./store/schema.js";
import { appendAudit, type AppendedAudit } from "./store/audit.js";
import type { OverrideReasonValue } from "./store/schema-policies.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export const MIN_JUSTIFICATION_CHARS = 10;

/** What an override is used for, for the audit record. */
export interface OverrideTarget {
  /** e.g. "execution", "workspace_promote", "decision_resolve". */
  action: string;
  targetId: string;
  workspaceId?: string | undefined;
  traceId?: string | undefined;
  details?: Record<string, unknown> | undefined;
}

/** A justification must say something: whitespace does not count toward its length. */
export function checkJustification(justification: string, field: string): string {
  const trimmed = justification.trim();
  if ([...trimmed].length < MIN_JUSTIFICATION_CHARS) {
    throw invalidField(field, `must be at least ${MIN_JUSTIFICATION_CHARS} characters`);
  }
  return trimmed;
}

/**
 * Checks, without side effects, that `principal` may use this override: a known reason code,
 * a real justification, and the `override:use` permission. Returns the normalised override.
 */
export function checkOverride(
  principal: Pick<Principal, "role">,
  override: Pick<Override, "reasonCode" | "justification">,
  field = "override",
): { reasonCode: OverrideReasonValue; justification: string } {
  const reasonCode = overrideReasons.value(override.reasonCode);
  if (!reasonCode) throw invalidField(`${field}.reason_code`, "must be one of incident_response, hotfix, business_deadline, data_correction, other");
  const justification = checkJustification(override.justification, `${field}.justification`);
  requirePermission(principal, "override:use");
  return { reasonCode, justification };
}

/** Audits one use of an override that checkOverride accepted (`ops_override_used`). */
export async function recordOverride(
  db: Executor,
  principal: Pick<Principal, "tenantId" | "userId" | "role">,
  override: { reasonCode: OverrideReasonValue; justification: string },
  target: OverrideTarget,
): Promise<AppendedAudit> {
  return appendAudit(db, principal.tenantId, {
    eventType: "ops_override_used",
    workspaceId: target.workspaceId,
    traceId: target.traceId,
    actor: principal.userId,
    data: {
      actor: principal.userId,
      role: principal.role,
      action: target.action,
      target_id: target.targetId,
      reason_code: override.reasonCode,
      justification: override.justification,
      ...(target.details ? { details: target.details } : {}),
    },
  });
}

/** checkOverride then recordOverride: what every override-capable RPC calls. */
export async function authorizeOverride(
  db: Executor,
  principal: Pick<Principal, "tenantId" | "userId" | "role">,
  override: Pick<Override, "reasonCode" | "justification">,
  target: OverrideTarget,
): Promise<AppendedAudit> {
  return recordOverride(db, principal, checkOverride(principal, override), target);
}
