/**
 * How a finding is replaced: `mask` with `[TYPE]` (or a custom rule's replacement), `hash` with a
 * salted HMAC prefix, `drop` with nothing, `summarize` with its first two and last two characters
 * around ".." (a value of four characters or fewer, any secret such as a key or token, and a
 * custom rule's match unless that rule itself asks for summarize, are masked instead).
 */
export type RedactionStrategy = "mask" | "hash" | "drop" | "summarize";

export type DetectorName =
  | "email"
  | "phone"
  | "credit_card"
  | "iban"
  | "us_ssn"
  | "ip_address"
  | "jwt"
  | "private_key"
  | "openai_key"
  | "anthropic_key"
  | "aws_access_key"
  | "github_token"
  | "slack_token";

export interface CustomRule {
  name: string;
  /** RE2 syntax; validated with {@link validateCustomRule}. */
  pattern: string;
  strategy?: RedactionStrategy;
  replacement?: string;
}

export interface RedactorOptions {
  /** Default "mask". */
  strategy?: RedactionStrategy;
  /** HMAC key for "hash"; required when the strategy or any rule uses hash. */
  salt?: string;
  /** Default: all built-in detectors. */
  detectors?: DetectorName[];
  custom?: CustomRule[];
  /** Default 1_000_000; longer text is truncated (with a marker) before scanning. */
  maxInputChars?: number;
}

export interface Finding {
  /** Detector name or custom rule name. */
  type: string;
  start: number;
  end: number;
}

export interface Redactor {
  redactText(text: string): { text: string; findings: Finding[] };
  /**
   * Deep over JSON-like values (objects, arrays, strings); keys are preserved, never executed or
   * used as object prototypes (`__proto__`, `constructor` are plain data); returns the set of
   * types found.
   */
  redactValue<T>(value: T): { value: T; types: string[] };
}

export class RedactionConfigError extends Error {
  override readonly name = "RedactionConfigError";
  /** The custom rule at fault, when there is one. */
  readonly rule: string | undefined;

  constructor(message: string, rule?: string) {
    super(message);
    this.rule = rule;
  }
}
