import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, type HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf, tenantWide } from "@clasper/auth";
import { clasperError, invalidField, enumNames } from "@clasper/core";
import { withTransaction } from "@clasper/db";
import {
  RedactionStrategySchema,
  CustomRedactionRuleSchema,
  GetRedactionRulesResponseSchema,
  PiiPattern,
  RedactionRulesSchema,
  RedactionStrategy,
  UpdateRedactionRulesResponseSchema,
  type CustomRedactionRule,
  type GetRedactionRulesRequest,
  type GetRedactionRulesResponse,
  type RedactionRules,
  type UpdateRedactionRulesRequest,
  type UpdateRedactionRulesResponse,
} from "@clasper/proto";
import { validateCustomRule } from "@clasper/redaction";
import { appendAudit, type AuditEventInput } from "../store/audit.js";
import { DEFAULT_REDACTION_RULES, findRedactionRules, replaceRedactionRules, type RedactionRulesChange, type RedactionRulesRow } from "../store/redaction.js";
import type { GovernanceDatabase } from "../store/schema.js";
import type { RedactionStrategyValue, StoredCustomRule } from "../store/schema-redaction.js";

/** Proto enum value ↔ REST name ("PII_PATTERN_PHONE_US" ↔ "phone_us"), via the enum's reverse map. */
function patternName(value: PiiPattern): string {
  return PiiPattern[value].toLowerCase();
}
function patternValue(name: string): PiiPattern {
  return PiiPattern[name.toUpperCase() as keyof typeof PiiPattern];
}

const STRATEGY = enumNames<RedactionStrategy, RedactionStrategyValue>(RedactionStrategySchema);

/** Which field of a rule validateCustomRule's reason is about (it names the field first). */
function ruleField(reason: string): string {
  for (const field of ["name", "strategy", "replacement"]) if (reason.startsWith(field)) return field;
  return "regex";
}

function customRules(rules: readonly CustomRedactionRule[]): StoredCustomRule[] {
  const seen = new Set<string>();
  return rules.map((rule, index) => {
    const path = `custom_rules[${index}]`;
    if (seen.has(rule.name)) throw invalidField(`${path}.name`, `duplicate rule name "${rule.name}"`);
    seen.add(rule.name);
    const strategy = STRATEGY.nameOf(rule.strategy);
    const optional = { ...(strategy ? { strategy } : {}), ...(rule.replacement ? { replacement: rule.replacement } : {}) };
    const problem = validateCustomRule({ name: rule.name, pattern: rule.regex, ...optional });
    if (problem) throw invalidField(`${path}.${ruleField(problem)}`, problem);
    return { name: rule.name, regex: rule.regex, ...optional };
  });
}

/** The stored rules, or the defaults (version 0) for a tenant that never changed them. */
function toProto(row: RedactionRulesRow | undefined): RedactionRules {
  if (!row) {
    return create(RedactionRulesSchema, {
      enabled: DEFAULT_REDACTION_RULES.enabled,
      strategy: STRATEGY.valueOf(DEFAULT_REDACTION_RULES.strategy),
      version: 0n,
    });
  }
  return create(RedactionRulesSchema, {
    enabled: row.enabled,
    piiPatterns: row.pii_patterns.map(patternValue),
    strategy: STRATEGY.valueOf(row.strategy),
    customRules: row.custom_rules.map((rule) =>
      create(CustomRedactionRuleSchema, {
        name: rule.name,
        regex: rule.regex,
        strategy: rule.strategy ? STRATEGY.valueOf(rule.strategy) : RedactionStrategy.UNSPECIFIED,
        replacement: rule.replacement ?? "",
      }),
    ),
    version: row.version,
    updatedAt: timestampFromDate(row.updated_at),
    updatedBy: row.updated_by,
  });
}

/** The audit record of a rule change (rule names and patterns: configuration, not data). */
function rulesChange(row: RedactionRulesRow, actor: string): AuditEventInput {
  return {
    eventType: "config_change",
    actor,
    data: {
      action: "redaction_rules_updated",
      version: row.version.toString(),
      enabled: row.enabled,
      pii_patterns: row.pii_patterns,
      strategy: row.strategy,
      custom_rules: row.custom_rules,
      actor,
    },
  };
}

/** GET/PUT /ops/api/redaction-rules: the tenant's redaction rules, versioned for the trace service's cache. */
export class RedactionRulesHandlers {
  constructor(private readonly db: Kysely<GovernanceDatabase>) {}

  async getRedactionRules(_req: GetRedactionRulesRequest, ctx: HandlerContext): Promise<GetRedactionRulesResponse> {
    const { tenantId } = principalOf(ctx);
    return create(GetRedactionRulesResponseSchema, { rules: toProto(await findRedactionRules(this.db, tenantId)) });
  }

  async updateRedactionRules(req: UpdateRedactionRulesRequest, ctx: HandlerContext): Promise<UpdateRedactionRulesResponse> {
    const principal = principalOf(ctx);
    tenantWide(principal, "the redaction rules");
    const change: RedactionRulesChange = {
      enabled: req.enabled ?? true,
      piiPatterns: req.piiPatterns.map(patternName),
      strategy: STRATEGY.nameOf(req.strategy) ?? "mask",
      customRules: customRules(req.customRules),
    };
    // The change and its audit entry commit together: no rule set without its record, or vice versa.
    const row = await withTransaction(this.db, async (trx) => {
      const written = await replaceRedactionRules(trx, principal.tenantId, change, principal.userId, req.expectedVersion);
      if (written) await appendAudit(trx, principal.tenantId, rulesChange(written, principal.userId));
      return written;
    });
    if (!row) {
      throw clasperError(Code.Aborted, `expected_version: the rules changed since version ${req.expectedVersion}; read them again`, {
        reason: "version_conflict",
        field: "expected_version",
      });
    }
    return create(UpdateRedactionRulesResponseSchema, { rules: toProto(row) });
  }
}
