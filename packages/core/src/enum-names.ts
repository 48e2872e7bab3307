import type { DescEnum } from "@bufbuild/protobuf";

/**
 * Proto enum ↔ the lower-case name stored in the database (and shown in REST): the name is the
 * value's suffix, e.g. SAMPLING_STRATEGY_ERRORS_ONLY ↔ "errors_only". Derived from the enum's
 * descriptor, so no service keeps its own pair of translation tables.
 */
export interface EnumNames<V extends number, N extends string> {
  /** The stored name, or undefined for the zero (unspecified) value and unknown numbers. */
  nameOf(value: V): N | undefined;
  /** The enum value of a stored name; throws on a name the enum does not have. */
  valueOf(name: N): V;
}

export function enumNames<V extends number, N extends string>(desc: DescEnum): EnumNames<V, N> {
  const byNumber = new Map<number, string>();
  const byName = new Map<string, number>();
  for (const value of desc.values) {
    if (value.number === 0) continue;
    const name = value.localName.toLowerCase();
    byNumber.set(value.number, name);
    byName.set(name, value.number);
  }
  return {
    nameOf: (value) => byNumber.get(value) as N | undefined,
    valueOf(name) {
      const value = byName.get(name);
      if (value === undefined) throw new Error(`${desc.typeName} has no value named "${name}"`);
      return value as V;
    },
  };
}
