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

/** Distinct values remembered per attribute key, newest first. */
const RECENT_PER_KEY = 4;

/**
 * Redacts the strings of ONE batch. An execution's chat spans can each carry the same
 * conversation, its tool spans the same arguments and results, and every span the same model and
 * tool names, so a batch repeats strings under the same attribute key: the last few distinct
 * values of each key are remembered with their result and reused when a value equals one of them
 * (redaction is a function of the text and the tenant's rules, which are fixed for the batch).
 * Keyed by attribute key rather than by the value itself because a Map keyed by the value hashes
 * every character of every new string, and payload strings are long and new in every batch; a
 * comparison stops at the first difference. The memo lives as long as the batch.
 */
export class BatchRedactor {
  private readonly recent = new Map<string, { value: string; result: RedactedText }[]>();

  constructor(private readonly redactor: Redactor) {}

  /** `value` redacted and cut to the value limit; `key` is the attribute it was found under. */
  text(key: string, value: string): RedactedText {
    let values = this.recent.get(key);
    if (values === undefined) this.recent.set(key, (values = []));
    for (const seen of values) if (seen.value === value) return seen.result;
    const { text, findings } = this.redactor.redactText(value);
    const result = { text: truncateValue(text), types: findings.length === 0 ? [] : [...new Set(findings.map((f) => f.type))] };
    values.unshift({ value, result });
    if (values.length > RECENT_PER_KEY) values.pop();
    return result;
  }
}

function redactStored(key: string, value: StoredValue, redactor: BatchRedactor, types: Set<string>): StoredValue {
  if (typeof value === "string") {
    const { text, types: found } = redactor.text(key, value);
    for (const type of found) types.add(type);
    return text;
  }
  if (Array.isArray(value)) return value.map((item) => redactStored(key, item, redactor, types));
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
    map[key] = exempt.has(key) ? truncateStored(value) : redactStored(key, value, redactor, types);
  }
}

const NOTHING_EXEMPT: ReadonlySet<string> = new Set();
/** The memo key of status messages (no attribute key has a NUL). */
const STATUS_MESSAGE = "\0status.message";

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
  if (span.statusMessage !== null) span.statusMessage = redactStored(STATUS_MESSAGE, span.statusMessage, redactor, types) as string;
  return types;
}
