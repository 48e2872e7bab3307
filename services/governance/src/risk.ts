import { create } from "@bufbuild/protobuf";
import {
  DataSensitivity,
  ProvenanceSource,
  RiskAssessmentSchema,
  RiskFactorsSchema,
  RiskLevel,
  SkillState,
  type RiskAssessment,
} from "@clasper/proto";

/**
 * The execution signals a risk score is computed from. Field names and enum types are those of
 * the proto messages, so a `ScoreRiskRequest` or a `PreflightRequest` can be passed as is.
 */
export interface RiskSignals {
  /** Tools the execution may call; the larger of this and toolNames.length counts. */
  toolCount?: number;
  toolNames?: readonly string[];
  skillState?: SkillState;
  /** 0..2; unset = 0.7. */
  temperature?: number | undefined;
  dataSensitivity?: DataSensitivity;
  skillTested?: boolean;
  skillPinned?: boolean;
  customFlags?: readonly string[];
  /** Unset (or UNSPECIFIED) = no adapter factor. */
  adapterRiskClass?: RiskLevel;
  requestedCapabilities?: readonly string[];
  context?: { externalNetwork?: boolean | undefined; elevatedPrivileges?: boolean | undefined } | undefined;
  provenance?: { source: ProvenanceSource } | undefined;
}

/** Factor scores, each 0..100. */
export interface RiskFactorScores {
  toolBreadth: number;
  skillMaturity: number;
  modelVolatility: number;
  dataSensitivity: number;
  customFactors: number;
  adapterRisk: number;
}

export interface RiskResult {
  /** 0..100. */
  score: number;
  level: RiskLevel;
  factors: RiskFactorScores;
  /** Human-readable reasons, e.g. "High-risk tools: delete_file". */
  riskFactors: string[];
  recommendations: string[];
}

/** Weights in percent (seed §5.5: 0.20, 0.20, 0.15, 0.20, 0.10, 0.15), so the sum is exact. */
export const RISK_WEIGHTS_PERCENT: Readonly<Record<keyof RiskFactorScores, number>> = {
  toolBreadth: 20,
  skillMaturity: 20,
  modelVolatility: 15,
  dataSensitivity: 20,
  customFactors: 10,
  adapterRisk: 15,
};

/** Tool names containing any of these (case-insensitive) add 20 each to tool breadth. */
export const HIGH_RISK_TOOL_MARKERS = [
  "execute_code",
  "run_command",
  "delete_file",
  "send_email",
  "make_purchase",
  "modify_database",
  "admin_action",
] as const;

export const DEFAULT_TEMPERATURE = 0.7;

const SKILL_MATURITY: Record<SkillState, number> = {
  [SkillState.ACTIVE]: 0,
  [SkillState.APPROVED]: 10,
  [SkillState.TESTED]: 30,
  [SkillState.DRAFT]: 60,
  [SkillState.DEPRECATED]: 80,
  [SkillState.UNSPECIFIED]: 50,
};

const SENSITIVITY: Record<DataSensitivity, number> = {
  [DataSensitivity.UNSPECIFIED]: 0,
  [DataSensitivity.NONE]: 0,
  [DataSensitivity.LOW]: 20,
  [DataSensitivity.MEDIUM]: 40,
  [DataSensitivity.HIGH]: 70,
  [DataSensitivity.PII]: 100,
};

const ADAPTER_CLASS_BASE: Record<RiskLevel, number> = {
  [RiskLevel.UNSPECIFIED]: 0,
  [RiskLevel.LOW]: 10,
  [RiskLevel.MEDIUM]: 40,
  [RiskLevel.HIGH]: 70,
  [RiskLevel.CRITICAL]: 90,
};

const LEVEL_NAMES: Record<RiskLevel, string> = {
  [RiskLevel.UNSPECIFIED]: "unspecified",
  [RiskLevel.LOW]: "low",
  [RiskLevel.MEDIUM]: "medium",
  [RiskLevel.HIGH]: "high",
  [RiskLevel.CRITICAL]: "critical",
};

/** score < 25 low; < 50 medium; < 75 high; else critical. */
export function riskLevelOf(score: number): RiskLevel {
  if (score < 25) return RiskLevel.LOW;
  if (score < 50) return RiskLevel.MEDIUM;
  if (score < 75) return RiskLevel.HIGH;
  return RiskLevel.CRITICAL;
}

/** "low" | "medium" | "high" | "critical" (the REST spelling), for messages and audit data. */
export function riskLevelName(level: RiskLevel): string {
  return LEVEL_NAMES[level];
}

/** True for high and critical, the levels that require approval in a preflight. */
export function isHighRisk(level: RiskLevel): boolean {
  return level === RiskLevel.HIGH || level === RiskLevel.CRITICAL;
}

function highRiskTools(names: readonly string[]): string[] {
  return names.filter((name) => {
    const lower = name.toLowerCase();
    return HIGH_RISK_TOOL_MARKERS.some((marker) => lower.includes(marker));
  });
}

function toolCountOf(signals: RiskSignals): number {
  return Math.max(signals.toolCount ?? 0, signals.toolNames?.length ?? 0);
}

function factorScores(signals: RiskSignals): RiskFactorScores {
  const names = signals.toolNames ?? [];
  const toolBreadth = Math.min(100, Math.min(100, toolCountOf(signals) * 15) + 20 * highRiskTools(names).length);
  let skillMaturity = SKILL_MATURITY[signals.skillState ?? SkillState.UNSPECIFIED];
  if (signals.skillTested) skillMaturity -= 20;
  if (signals.skillPinned) skillMaturity -= 10;
  const temperature = signals.temperature ?? DEFAULT_TEMPERATURE;
  return {
    toolBreadth,
    skillMaturity: Math.max(0, skillMaturity),
    modelVolatility: Math.round((temperature / 2) * 100),
    dataSensitivity: SENSITIVITY[signals.dataSensitivity ?? DataSensitivity.UNSPECIFIED],
    customFactors: Math.min(100, 20 * (signals.customFlags?.length ?? 0)),
    adapterRisk: adapterRisk(signals),
  };
}

function adapterRisk(signals: RiskSignals): number {
  const riskClass = signals.adapterRiskClass ?? RiskLevel.UNSPECIFIED;
  if (riskClass === RiskLevel.UNSPECIFIED) return 0;
  const capabilities = Math.min(30, 5 * (signals.requestedCapabilities?.length ?? 0));
  let context = 0;
  if (signals.context?.externalNetwork) context += 30;
  if (signals.context?.elevatedPrivileges) context += 40;
  if (signals.provenance?.source === ProvenanceSource.MARKETPLACE) context += 20;
  return Math.min(100, ADAPTER_CLASS_BASE[riskClass] + capabilities + Math.min(100, context));
}

function describeRisks(signals: RiskSignals, factors: RiskFactorScores): string[] {
  const reasons: string[] = [];
  if (factors.toolBreadth > 50) reasons.push(`High tool count: ${toolCountOf(signals)} tools`);
  const risky = highRiskTools(signals.toolNames ?? []);
  if (risky.length > 0) reasons.push(`High-risk tools: ${risky.join(", ")}`);
  if (signals.skillState === SkillState.DRAFT) reasons.push("Skill is in draft state");
  if (signals.skillState === SkillState.DEPRECATED) reasons.push("Skill is deprecated");
  const temperature = signals.temperature ?? DEFAULT_TEMPERATURE;
  if (temperature > 1) reasons.push(`High temperature: ${temperature}`);
  if (signals.dataSensitivity === DataSensitivity.PII) reasons.push("Handles personal data (PII)");
  if (signals.dataSensitivity === DataSensitivity.HIGH) reasons.push("Handles high-sensitivity data");
  if (signals.customFlags && signals.customFlags.length > 0) reasons.push(`Custom risk flags: ${signals.customFlags.join(", ")}`);
  const riskClass = signals.adapterRiskClass ?? RiskLevel.UNSPECIFIED;
  if (riskClass !== RiskLevel.UNSPECIFIED) reasons.push(`Adapter risk class: ${riskLevelName(riskClass)}`);
  if (signals.context?.externalNetwork) reasons.push("Requires external network access");
  if (signals.context?.elevatedPrivileges) reasons.push("Requires elevated privileges");
  if (signals.provenance?.source === ProvenanceSource.MARKETPLACE) reasons.push("Code comes from a marketplace");
  return reasons;
}

function recommend(signals: RiskSignals, factors: RiskFactorScores): string[] {
  const advice: string[] = [];
  if (factors.skillMaturity > 30 && signals.skillState !== SkillState.ACTIVE) {
    advice.push("Test the skill and promote it to active before production use");
  }
  if (!signals.skillPinned) advice.push("Pin the skill version so the execution is reproducible");
  if (factors.modelVolatility > 50) advice.push("Lower the temperature to reduce output variability");
  if (factors.toolBreadth > 50) advice.push("Review whether every tool is necessary and remove the rest");
  if (signals.dataSensitivity === DataSensitivity.PII || signals.dataSensitivity === DataSensitivity.HIGH) {
    advice.push("Make sure redaction is enabled for this tenant's traces");
  }
  if (signals.adapterRiskClass !== undefined && isHighRisk(signals.adapterRiskClass)) {
    advice.push("Require approval for executions through this high-risk adapter");
  }
  return advice;
}

/**
 * Seed §5.5: six factor scores (0..100), weighted and summed; score = min(100, round(Σ)).
 * Pure: the same signals always give the same result.
 */
export function scoreRisk(signals: RiskSignals): RiskResult {
  const factors = factorScores(signals);
  const weighted = (Object.keys(RISK_WEIGHTS_PERCENT) as (keyof RiskFactorScores)[]).reduce(
    (sum, name) => sum + factors[name] * RISK_WEIGHTS_PERCENT[name],
    0,
  );
  // Σ factor×weight% is an integer, so /100 and round() give the exact documented result.
  const score = Math.min(100, Math.round(weighted / 100));
  return {
    score,
    level: riskLevelOf(score),
    factors,
    riskFactors: describeRisks(signals, factors),
    recommendations: recommend(signals, factors),
  };
}

/** The result as the proto RiskAssessment (for responses and stored decisions). */
export function toRiskAssessment(result: RiskResult): RiskAssessment {
  return create(RiskAssessmentSchema, {
    riskScore: result.score,
    riskLevel: result.level,
    factors: create(RiskFactorsSchema, result.factors),
    riskFactors: result.riskFactors,
    recommendations: result.recommendations,
  });
}
