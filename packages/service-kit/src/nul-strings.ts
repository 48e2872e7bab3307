import { ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";

/**
 * Message types whose strings may hold U+0000: span content, which the trace service stores
 * with the character replaced (services/trace/src/ingest/normalize.ts) rather than refusing a
 * batch of telemetry for it.
 */
const NUL_ALLOWED: ReadonlySet<string> = new Set(["clasper.trace.v1.Span"]);

/** Whether a message of this type can hold a string the check must look at (computed once per type). */
const checked = new WeakMap<DescMessage, boolean>();

function hasCheckedStrings(desc: DescMessage, visiting = new Set<DescMessage>()): boolean {
  const known = checked.get(desc);
  if (known !== undefined) return known;
  if (NUL_ALLOWED.has(desc.typeName) || visiting.has(desc)) return false;
  visiting.add(desc);
  const result = desc.fields.some((field) => {
    const message = messageOf(field);
    if (message) return hasCheckedStrings(message, visiting);
    return isString(field) || (field.fieldKind === "map" && field.mapKey === ScalarType.STRING);
  });
  visiting.delete(desc);
  // A type reached again inside its own recursion is answered false there; only the outermost answer is kept.
  if (visiting.size === 0 || result) checked.set(desc, result);
  return result;
}

function messageOf(field: DescField): DescMessage | undefined {
  if (field.fieldKind === "message") return field.message;
  if (field.fieldKind === "list" && field.listKind === "message") return field.message;
  if (field.fieldKind === "map" && field.mapKind === "message") return field.message;
  return undefined;
}

function isString(field: DescField): boolean {
  return (
    (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) ||
    (field.fieldKind === "list" && field.listKind === "scalar" && field.scalar === ScalarType.STRING) ||
    (field.fieldKind === "map" && field.mapKind === "scalar" && field.scalar === ScalarType.STRING)
  );
}

const hasNul = (value: unknown): boolean => typeof value === "string" && value.includes("\0");

/**
 * The path of the first string in `message` that holds U+0000 (`filter.labels["env"]`,
 * `items[2].name`), or undefined. PostgreSQL's text and jsonb cannot store that character, so a
 * request carrying one is refused up front, naming the field, instead of failing in the database
 * as an internal error.
 */
export function firstNulString(desc: DescMessage, message: Message): string | undefined {
  return hasCheckedStrings(desc) ? search(reflect(desc, message), "") : undefined;
}

function search(message: ReflectMessage, prefix: string): string | undefined {
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const path = prefix + field.name;
    const nested = messageOf(field);
    if (nested && !hasCheckedStrings(nested)) {
      if (field.fieldKind !== "map" || field.mapKey !== ScalarType.STRING) continue;
    }
    switch (field.fieldKind) {
      case "scalar":
        if (hasNul(message.get(field))) return path;
        break;
      case "message": {
        const found = search(message.get(field), `${path}.`);
        if (found) return found;
        break;
      }
      case "list": {
        const list = message.get(field);
        for (let i = 0; i < list.size; i++) {
          const item = list.get(i);
          if (field.listKind === "message") {
            const found = search(item as ReflectMessage, `${path}[${i}].`);
            if (found) return found;
          } else if (hasNul(item)) return `${path}[${i}]`;
        }
        break;
      }
      case "map":
        for (const [key, value] of message.get(field)) {
          const at = `${path}[${JSON.stringify(key)}]`;
          if (hasNul(key)) return at;
          if (field.mapKind === "message") {
            if (nested && hasCheckedStrings(nested)) {
              const found = search(value as ReflectMessage, `${at}.`);
              if (found) return found;
            }
          } else if (hasNul(value)) return at;
        }
        break;
      case "enum":
        break;
    }
  }
  return undefined;
}
