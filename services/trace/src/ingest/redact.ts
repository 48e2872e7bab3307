import type { Redactor } from "@clasper/redaction";
import { ATTR, PAYLOAD_ATTRIBUTES } from "@clasper/telemetry";
import { truncateValue } from "./limits.js";
import type { AttributeMap, NormalizedSpan, StoredValue } from "./normalize.js";

/**
 * Span attributes whose values are identifiers, codes, names and numbers Clasper itself writes:
 * they are stored as sent. Every OTHER string attribute — the payload attributes and any key
 * outside this list, including ones a future emitter invents — goes through the redactor (deny by
 * default). Ids stay unredacted on purpose: an id that looks like an e-mail must still find its
 * trace. Events carry message content, so every string in an event is redacted.
 */
const STRUCTURAL_ATTRIBUTES: ReadonlySet<string> = new Set<string>([
  ATTR.operationName,
  ATTR.providerName,
  ATTR.requestModel,
  ATTR.responseModel,
  ATTR.responseFinishReasons,
  ATTR.responseId,
  ATTR.agentName,
  ATTR.conversationId,
  ATTR.toolName,
  ATTR.toolCallId,
  ATTR.errorType,
  ATTR.executionId,
  ATTR.workspaceId,
  ATTR.environment,
  ATTR.userId,
  ATTR.workspaceVersion,
  ATTR.skillVersions,
  ATTR.taskId,
  ATTR.documentId,
  ATTR.messageId,
  ATTR.executionStatus,
  ATTR.source,
  ATTR.toolIdempotencyKey,
  ATTR.decisionEffect,
  ATTR.decisionId,
  ATTR.decisionReasons,
  ATTR.matchedPolicies,
  ATTR.riskLevel,
  ATTR.reservationId,
  "service.name",
  "server.address",
]);

// A payload attribute must never be exempted, whatever is added above.
for (const key of PAYLOAD_ATTRIBUTES) {
  if (STRUCTURAL_ATTRIBUTES.has(key)) throw new Error(`${key} is a payload attribute and must be redacted`);
}

function redactStored(value: StoredValue, redactor: Redactor, types: Set<string>): StoredValue {
  if (typeof value === "string") {
    const { text, findings } = redactor.redactText(value);
    for (const finding of findings) types.add(finding.type);
    return truncateValue(text);
  }
  if (Array.isArray(value)) return value.map((item) => redactStored(item, redactor, types));
  return value;
}

/** Non-string values are numbers and booleans; only strings reach the redactor. */
function truncateStored(value: StoredValue): StoredValue {
  if (typeof value === "string") return truncateValue(value);
  if (Array.isArray(value)) return value.map(truncateStored);
  return value;
}

function redactMap(map: AttributeMap, redactor: Redactor, types: Set<string>, exempt: ReadonlySet<string>): void {
  for (const key of Object.keys(map)) {
    const value = map[key] as StoredValue;
    map[key] = exempt.has(key) ? truncateStored(value) : redactStored(value, redactor, types);
  }
}

const NOTHING_EXEMPT: ReadonlySet<string> = new Set();

/**
 * Redacts the span in place before anything of it is stored: attribute values (see
 * STRUCTURAL_ATTRIBUTES), every event attribute and the status message; then cuts values longer
 * than the value limit (after redaction, so a cut never leaves half a detectable secret behind).
 * Returns the redaction types found, e.g. "email".
 */
export function redactSpan(span: NormalizedSpan, redactor: Redactor): Set<string> {
  const types = new Set<string>();
  redactMap(span.attributes, redactor, types, STRUCTURAL_ATTRIBUTES);
  for (const event of span.events) redactMap(event.attributes, redactor, types, NOTHING_EXEMPT);
  if (span.statusMessage !== null) span.statusMessage = redactStored(span.statusMessage, redactor, types) as string;
  return types;
}
