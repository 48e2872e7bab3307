import { isIPv6 } from "node:net";
import type { Detector } from "./detector.js";

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";

export const ipv4: Detector = {
  name: "ip_address",
  priority: 3,
  anchor: /\d\.\d{1,3}\.\d{1,3}\.\d/,
  // Not inside a longer dotted sequence (OIDs, 4+ part versions) and not after a letter ("v1.2.3.4").
  pattern: new RegExp(`(?<![\\w.])(?:${OCTET}\\.){3}${OCTET}(?!\\w|\\.\\d)`, "g"),
};

function acceptIpv6(candidate: string): number {
  // "::" alone is the unspecified address and common in code ("std::"): not worth redacting.
  if (!/[0-9A-Fa-f]/.test(candidate)) return 0;
  if (isIPv6(candidate)) return candidate.length;
  // A sentence can end in a colon: "reached 2001:db8::1: timeout".
  const trimmed = candidate.endsWith(":") && !candidate.endsWith("::") ? candidate.slice(0, -1) : "";
  return trimmed && isIPv6(trimmed) ? trimmed.length : 0;
}

export const ipv6: Detector = {
  name: "ip_address",
  priority: 3,
  // Every address node:net accepts has two colons with at most one group (0-4 hex digits) between
  // them: eight groups, or "::". JSON's '"key":"value"' colons have none.
  anchor: /:[0-9A-Fa-f]{0,4}:/,
  // Hex-and-colon run (39 = longest written form) with an optional embedded IPv4 tail; node:net
  // decides validity.
  pattern: /(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?:\.\d{1,3}){0,3}(?![\w:]|\.\d)/g,
  accept: acceptIpv6,
};
