import type { DetectorName } from "../types.js";
import { email, phone } from "./contact.js";
import type { Detector } from "./detector.js";
import { creditCard, iban, usSsn } from "./financial.js";
import { ipv4, ipv6 } from "./network.js";
import { anthropicKey, awsAccessKey, githubToken, jwt, openaiKey, privateKey, slackToken } from "./secrets.js";

export { type Detector, type Span, scan } from "./detector.js";

export const DETECTOR_NAMES: readonly DetectorName[] = [
  "email",
  "phone",
  "credit_card",
  "iban",
  "us_ssn",
  "ip_address",
  "jwt",
  "private_key",
  "openai_key",
  "anthropic_key",
  "aws_access_key",
  "github_token",
  "slack_token",
];

const ALL: readonly Detector[] = [
  email,
  phone,
  creditCard,
  iban,
  usSsn,
  ipv4,
  ipv6,
  jwt,
  privateKey,
  openaiKey,
  anthropicKey,
  awsAccessKey,
  githubToken,
  slackToken,
];

/** The built-in detectors behind the given names (one name can have several, e.g. IPv4 and IPv6). */
export function detectorsFor(names: readonly DetectorName[]): Detector[] {
  const wanted = new Set(names);
  return ALL.filter((d) => wanted.has(d.name));
}
