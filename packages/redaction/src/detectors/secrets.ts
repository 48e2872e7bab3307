import type { Detector } from "./detector.js";
import { whole } from "./detector.js";

function isJwt(candidate: string): boolean {
  const header = candidate.slice(0, candidate.indexOf("."));
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, "base64url").toString("utf8"));
    return typeof parsed === "object" && parsed !== null && typeof (parsed as { alg?: unknown }).alg === "string";
  } catch {
    return false;
  }
}

export const jwt: Detector = {
  name: "jwt",
  priority: 9,
  secret: true,
  anchor: /e[wy][A-Za-z0-9_\-]{8}/,
  // A JSON header ("{" then a quote, space or newline) encodes to "ey" or "ew". The signature may
  // be empty (alg "none"); a fourth part would make it a JWE, which is not matched as a JWT.
  pattern:
    /(?<![\w\-.])e[wy][A-Za-z0-9_\-]{8,4094}\.[A-Za-z0-9_\-]{2,16384}\.[A-Za-z0-9_\-]{0,4096}(?![\w\-]|\.[\w\-])/g,
  accept: whole(isJwt),
};

const KEY_KIND = "(?:[A-Z0-9]{1,16} ){0,4}PRIVATE KEY(?: BLOCK)?";

export const privateKey: Detector = {
  name: "private_key",
  priority: 10,
  secret: true,
  anchor: /-----BEGIN /,
  // Whole BEGIN…END block, whatever the body holds; neither body may run over a "-----", so each
  // scan stops at the next armour line and repeated BEGIN lines stay linear. A block cut off
  // before its END line (truncation, streaming) is redacted as far as its body looks like PEM:
  // base64, encryption headers ("Proc-Type: 4,ENCRYPTED") and JSON-escaped newlines.
  pattern: new RegExp(
    `-----BEGIN ${KEY_KIND}-----(?:(?:[^-]|-(?!----)){1,65536}-----END ${KEY_KIND}-----|(?:[A-Za-z0-9+/=\\s:,._\\\\]|-(?!----)){1,65536})`,
    "g",
  ),
};

/** Random key material mixes letters and digits; prose with a "sk-" prefix rarely does. */
const looksRandom = whole((candidate) => /\d/.test(candidate) && /[A-Za-z].*[A-Za-z]/.test(candidate.slice(3)));

export const openaiKey: Detector = {
  name: "openai_key",
  priority: 7,
  secret: true,
  anchor: /sk-/,
  pattern: /(?<![\w\-])sk-(?!ant-)(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{20,256}(?![\w\-])/g,
  accept: looksRandom,
};

export const anthropicKey: Detector = {
  name: "anthropic_key",
  priority: 8,
  secret: true,
  anchor: /sk-ant-/,
  pattern: /(?<![\w\-])sk-ant-[A-Za-z0-9_\-]{20,256}(?![\w\-])/g,
  accept: looksRandom,
};

export const awsAccessKey: Detector = {
  name: "aws_access_key",
  priority: 8,
  secret: true,
  anchor: /AKIA|ASIA/,
  pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g,
};

export const githubToken: Detector = {
  name: "github_token",
  priority: 8,
  secret: true,
  anchor: /gh[pousr]_|github_pat_/,
  pattern: /(?<![\w\-])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,242})(?![\w\-])/g,
};

export const slackToken: Detector = {
  name: "slack_token",
  priority: 8,
  secret: true,
  anchor: /xox[abprs]-|hooks\.slack\.com\//,
  pattern:
    /(?<![\w\-])xox[abprs]-(?=[A-Za-z0-9\-]{0,250}\d)[A-Za-z0-9\-]{10,250}(?![\w\-])|https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_\/\-]{8,250}/g,
};
