import { createHmac } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createRedactor, type CustomRule, type DetectorName, type RedactionStrategy as Strategy, type Redactor } from "@clasper/redaction";
import { PiiPattern, RedactionStrategy, type RedactionRules } from "@clasper/proto";
import type { Logger } from "pino";

/** How long a tenant's rules are used before governance is asked again. */
export const RULES_TTL_MS = 30_000;

/** Governance's detector names → the redaction package's detectors. */
const DETECTORS: Readonly<Record<PiiPattern, readonly DetectorName[]>> = {
  [PiiPattern.UNSPECIFIED]: [],
  [PiiPattern.EMAIL]: ["email"],
  [PiiPattern.SSN]: ["us_ssn"],
  [PiiPattern.PHONE_US]: ["phone"],
  [PiiPattern.CREDIT_CARD]: ["credit_card"],
  [PiiPattern.IP_ADDRESS]: ["ip_address"],
  [PiiPattern.API_KEY]: ["openai_key", "anthropic_key", "aws_access_key", "github_token", "slack_token", "private_key"],
  [PiiPattern.JWT]: ["jwt"],
  // The package has no password detector; tenants express it as a custom rule.
  [PiiPattern.PASSWORD_FIELD]: [],
};

function strategyOf(value: RedactionStrategy): Strategy | undefined {
  switch (value) {
    case RedactionStrategy.HASH:
      return "hash";
    case RedactionStrategy.DROP:
      return "drop";
    case RedactionStrategy.MASK:
      return "mask";
    case RedactionStrategy.SUMMARIZE:
      return "summarize";
    default:
      return undefined;
  }
}

/** Leaves text as it is: the tenant switched redaction off. */
const PASS_THROUGH: Redactor = {
  redactText: (text) => ({ text, findings: [] }),
  redactValue: (value) => ({ value, types: [] }),
};

/** The redactor the tenant's governance rules describe. */
export function redactorFromRules(rules: RedactionRules, salt: string): Redactor {
  if (!rules.enabled) return PASS_THROUGH;
  const detectors = rules.piiPatterns.length === 0 ? undefined : [...new Set(rules.piiPatterns.flatMap((p) => DETECTORS[p] ?? []))];
  const custom: CustomRule[] = rules.customRules.map((rule) => {
    const strategy = strategyOf(rule.strategy);
    return {
      name: rule.name,
      pattern: rule.regex,
      ...(strategy ? { strategy } : {}),
      ...(rule.replacement ? { replacement: rule.replacement } : {}),
    };
  });
  const strategy = strategyOf(rules.strategy) ?? "mask";
  return createRedactor({ strategy, salt, custom, ...(detectors ? { detectors } : {}) });
}

/** What the trace service redacts with when governance has no rules for it: every built-in detector, masking. */
export function defaultRedactor(): Redactor {
  return createRedactor({ strategy: "mask" });
}

export interface TenantRedactors {
  /** The tenant's redactor; rules are fetched at most once per RULES_TTL_MS per tenant. */
  forTenant(tenantId: string): Promise<Redactor>;
}

/**
 * Per-tenant redactors built from governance's GetRedactionRules, cached RULES_TTL_MS. When
 * governance cannot answer (Unimplemented while that RPC is not built, or down) ingest does not
 * stop and does not store raw text: it redacts with the built-in detectors and masks, and caches
 * that too, so an outage costs one failed call per tenant per TTL, not one per batch.
 * `fetchRules` runs inside the IngestSpans call, so the caller's context (the tenant) is forwarded.
 */
export function createTenantRedactors(options: {
  fetchRules: () => Promise<RedactionRules | undefined>;
  /** Keys the HMAC salt of the "hash" strategy (per tenant, derived from this secret). */
  saltSecret: string;
  logger: Logger;
  now?: () => number;
  ttlMs?: number;
}): TenantRedactors {
  const now = options.now ?? Date.now;
  const ttlMs = options.ttlMs ?? RULES_TTL_MS;
  const cache = new Map<string, { expiresAt: number; redactor: Promise<Redactor> }>();
  const fallback = defaultRedactor();

  async function load(tenantId: string): Promise<Redactor> {
    const salt = createHmac("sha256", options.saltSecret).update(tenantId).digest("hex");
    try {
      const rules = await options.fetchRules();
      return rules ? redactorFromRules(rules, salt) : fallback;
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.Unimplemented)) {
        options.logger.warn({ err, tenantId }, "redaction rules unavailable; redacting with the built-in detectors");
      }
      return fallback;
    }
  }

  return {
    forTenant(tenantId) {
      const hit = cache.get(tenantId);
      if (hit && hit.expiresAt > now()) return hit.redactor;
      // The promise is cached, so concurrent batches of one tenant share one fetch.
      const redactor = load(tenantId);
      cache.set(tenantId, { expiresAt: now() + ttlMs, redactor });
      return redactor;
    },
  };
}
