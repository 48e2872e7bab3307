import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";

/**
 * A service's RPCs are split over several handler classes (one per area: retention, labels, ...).
 * This joins them into the one implementation object Connect's router takes, binding each
 * method to its instance, and refuses two handlers claiming the same RPC.
 */
export function implement<S extends DescService>(service: S, ...handlers: object[]): Partial<ServiceImpl<S>> {
  const impl: Record<string, unknown> = {};
  const rpcNames = new Set(service.methods.map((m) => m.localName));
  for (const handler of handlers) {
    let proto: object | null = Object.getPrototypeOf(handler) as object | null;
    const own = new Set<string>(Object.keys(handler));
    while (proto && proto !== Object.prototype) {
      for (const key of Object.getOwnPropertyNames(proto)) own.add(key);
      proto = Object.getPrototypeOf(proto) as object | null;
    }
    for (const key of own) {
      if (!rpcNames.has(key)) continue;
      const fn = (handler as Record<string, unknown>)[key];
      if (typeof fn !== "function") continue;
      if (key in impl) throw new Error(`${service.typeName}.${key} is implemented twice`);
      impl[key] = (fn as (...args: unknown[]) => unknown).bind(handler);
    }
  }
  return impl as Partial<ServiceImpl<S>>;
}

/** The RPC names a partial implementation provides (used to publish endpoint availability). */
export function implementedMethods(service: DescService, impl: object): string[] {
  return service.methods.filter((m) => typeof (impl as Record<string, unknown>)[m.localName] === "function").map((m) => m.name);
}
