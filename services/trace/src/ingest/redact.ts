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

/** A string as it is stored: redacted, then cut to the value limit; with the redaction types found. */
interface RedactedText {
  text: string;
  types: readonly string[];
}

/**
 * Redacts the strings of ONE batch. An execution's chat spans each carry the conversation so far,
 * and its tool spans the same arguments and results, so a batch repeats the same long strings
 * several times: each distinct string is scanned once and its result reused (redaction is a
 * function of the text and the tenant's rules, which are fixed for the batch). The memo lives
 * as long as the batch.
 */
export class BatchRedactor {
  private readonly seen = new Map<string, RedactedText>();

  constructor(private readonly redactor: Redactor) {}

  text(value: string): RedactedText {
    let result = this.seen.get(value);
    if (result === undefined) {
      const { text, findings } = this.redactor.redactText(value);
      result = { text: truncateValue(text), types: findings.length === 0 ? [] : [...new Set(findings.map((f) => f.type))] };
      this.seen.set(value, result);
    }
    return result;
  }
}

function redactStored(value: StoredValue, redactor: BatchRedactor, types: Set<string>): StoredValue {
  if (typeof value === "string") {
    const { text, types: found } = redactor.text(value);
    for (const type of found) types.add(type);
    return text;
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

function redactMap(map: AttributeMap, redactor: BatchRedactor, types: Set<string>, exempt: ReadonlySet<string>): void {
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
 * Returns the redaction types found, e.g. "email". Give every span of a batch the same
 * BatchRedactor.
 */
export function redactSpan(span: NormalizedSpan, redactor: BatchRedactor): Set<string> {
  const types = new Set<string>();
  redactMap(span.attributes, redactor, types, STRUCTURAL_ATTRIBUTES);
  for (const event of span.events) redactMap(event.attributes, redactor, types, NOTHING_EXEMPT);
  if (span.statusMessage !== null) span.statusMessage = redactStored(span.statusMessage, redactor, types) as string;
  return types;
}
