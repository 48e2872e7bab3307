import type { JWTPayload } from "jose";

/**
 * Reads a claim by name, or by dotted path into nested objects (`realm_access.roles`).
 * The literal name wins first because OIDC providers namespace custom claims with URLs
 * (`https://clasper.dev/tenant_id`) whose dots are not path separators.
 */
export function readClaim(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let node: unknown = payload;
  for (const part of name.split(".")) {
    if (typeof node !== "object" || node === null || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** A non-empty string claim, else undefined (numbers are not silently stringified). */
export function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = readClaim(payload, name);
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

/** Identity providers send lists either as JSON arrays or as "a, b" strings; accept both. */
export function listClaim(payload: JWTPayload, name: string): string[] | undefined {
  const value = readClaim(payload, name);
  const items = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : undefined;
  if (items === undefined) return undefined;
  return items.filter((item): item is string => typeof item === "string").map((item) => item.trim()).filter(Boolean);
}
