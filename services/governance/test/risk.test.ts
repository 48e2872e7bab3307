import { describe, expect, it } from "vitest";
import { DataSensitivity, ProvenanceSource, RiskLevel, SkillState } from "@clasper/proto";
import { RISK_WEIGHTS_PERCENT, riskLevelOf, scoreRisk, type RiskSignals } from "../src/risk.js";

/** A baseline whose every factor is 0: an active, pinned skill at temperature 0, nothing else. */
const ZERO: RiskSignals = { toolCount: 0, skillState: SkillState.ACTIVE, skillPinned: true, temperature: 0 };

describe("risk factors (seed §5.5)", () => {
  it("scores a zero baseline 0, low, with no reasons", () => {
    const result = scoreRisk(ZERO);
    expect(result).toMatchObject({ score: 0, level: RiskLevel.LOW, riskFactors: [] });
    expect(Object.values(result.factors).every((v) => v === 0)).toBe(true);
  });

  it("tool breadth: 15 per tool, +20 per high-risk name (case-insensitive), capped at 100", () => {
    expect(scoreRisk({ ...ZERO, toolCount: 2 }).factors.toolBreadth).toBe(30);
    expect(scoreRisk({ ...ZERO, toolCount: 2, toolNames: ["search", "Delete_File_v2"] }).factors.toolBreadth).toBe(50);
    expect(scoreRisk({ ...ZERO, toolCount: 7 }).factors.toolBreadth).toBe(100);
    expect(scoreRisk({ ...ZERO, toolCount: 6, toolNames: ["run_command"] }).factors.toolBreadth).toBe(100);
    // Listed names count as tools even when tool_count says fewer.
    expect(scoreRisk({ ...ZERO, toolNames: ["a", "b", "c"] }).factors.toolBreadth).toBe(45);
    const reasons = scoreRisk({ ...ZERO, toolCount: 4, toolNames: ["send_email", "make_purchase"] }).riskFactors;
    expect(reasons).toEqual(["High tool count: 4 tools", "High-risk tools: send_email, make_purchase"]);
  });

  it("skill maturity: state map, −20 tested, −10 pinned, floor 0", () => {
    const maturity = (s: RiskSignals) => scoreRisk({ ...ZERO, skillPinned: false, ...s }).factors.skillMaturity;
    expect(maturity({ skillState: SkillState.ACTIVE })).toBe(0);
    expect(maturity({ skillState: SkillState.APPROVED })).toBe(10);
    expect(maturity({ skillState: SkillState.TESTED })).toBe(30);
    expect(maturity({ skillState: SkillState.DRAFT })).toBe(60);
    expect(maturity({ skillState: SkillState.DEPRECATED })).toBe(80);
    expect(maturity({ skillState: SkillState.UNSPECIFIED })).toBe(50);
    expect(maturity({ skillState: SkillState.DRAFT, skillTested: true, skillPinned: true })).toBe(30);
    expect(maturity({ skillState: SkillState.APPROVED, skillTested: true, skillPinned: true })).toBe(0);
    expect(scoreRisk({ ...ZERO, skillState: SkillState.DRAFT }).riskFactors).toContain("Skill is in draft state");
    expect(scoreRisk({ ...ZERO, skillState: SkillState.DEPRECATED }).riskFactors).toContain("Skill is deprecated");
  });

  it("model volatility: round(temperature / 2 × 100), default temperature 0.7", () => {
    expect(scoreRisk({ ...ZERO, temperature: undefined }).factors.modelVolatility).toBe(35);
    expect(scoreRisk({ ...ZERO, temperature: 1.5 }).factors.modelVolatility).toBe(75);
    expect(scoreRisk({ ...ZERO, temperature: 2 }).factors.modelVolatility).toBe(100);
    expect(scoreRisk({ ...ZERO, temperature: 1.5 }).riskFactors).toEqual(["High temperature: 1.5"]);
    expect(scoreRisk({ ...ZERO, temperature: 1 }).riskFactors).toEqual([]);
  });

  it("data sensitivity: none 0, low 20, medium 40, high 70, pii 100", () => {
    const cases: [DataSensitivity, number][] = [
      [DataSensitivity.UNSPECIFIED, 0],
      [DataSensitivity.NONE, 0],
      [DataSensitivity.LOW, 20],
      [DataSensitivity.MEDIUM, 40],
      [DataSensitivity.HIGH, 70],
      [DataSensitivity.PII, 100],
    ];
    for (const [dataSensitivity, expected] of cases) {
      expect(scoreRisk({ ...ZERO, dataSensitivity }).factors.dataSensitivity).toBe(expected);
    }
    expect(scoreRisk({ ...ZERO, dataSensitivity: DataSensitivity.PII }).riskFactors).toEqual(["Handles personal data (PII)"]);
  });

  it("custom factors: 20 per flag, capped at 100", () => {
    expect(scoreRisk({ ...ZERO, customFlags: ["a", "b"] }).factors.customFactors).toBe(40);
    expect(scoreRisk({ ...ZERO, customFlags: ["a", "b", "c", "d", "e", "f"] }).factors.customFactors).toBe(100);
    expect(scoreRisk({ ...ZERO, customFlags: ["prod-db"] }).riskFactors).toEqual(["Custom risk flags: prod-db"]);
  });

  it("adapter risk: 0 without a class; base + 5 per capability (≤30) + context signals, capped at 100", () => {
    expect(scoreRisk({ ...ZERO, requestedCapabilities: ["a"], context: { externalNetwork: true } }).factors.adapterRisk).toBe(0);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.LOW }).factors.adapterRisk).toBe(10);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.MEDIUM, requestedCapabilities: ["a", "b"] }).factors.adapterRisk).toBe(50);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.LOW, requestedCapabilities: Array(10).fill("c") }).factors.adapterRisk).toBe(40);
    const context = { externalNetwork: true, elevatedPrivileges: true };
    const marketplace = { source: ProvenanceSource.MARKETPLACE };
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.LOW, context }).factors.adapterRisk).toBe(80);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.LOW, context, provenance: marketplace }).factors.adapterRisk).toBe(100);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.CRITICAL }).factors.adapterRisk).toBe(90);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.HIGH, context, provenance: marketplace }).riskFactors).toEqual([
      "Adapter risk class: high",
      "Requires external network access",
      "Requires elevated privileges",
      "Code comes from a marketplace",
    ]);
  });
});

describe("risk weights and score", () => {
  it("weights are 20/20/15/20/10/15 and sum to 100%", () => {
    expect(RISK_WEIGHTS_PERCENT).toEqual({ toolBreadth: 20, skillMaturity: 20, modelVolatility: 15, dataSensitivity: 20, customFactors: 10, adapterRisk: 15 });
    expect(Object.values(RISK_WEIGHTS_PERCENT).reduce((a, b) => a + b, 0)).toBe(100);
  });

  it("each factor at 100 alone contributes exactly its weight", () => {
    expect(scoreRisk({ ...ZERO, toolCount: 7 }).score).toBe(20);
    expect(scoreRisk({ ...ZERO, skillPinned: false, skillState: SkillState.DEPRECATED }).score).toBe(16); // 80 × 0.20
    expect(scoreRisk({ ...ZERO, temperature: 2 }).score).toBe(15);
    expect(scoreRisk({ ...ZERO, dataSensitivity: DataSensitivity.PII }).score).toBe(20);
    expect(scoreRisk({ ...ZERO, customFlags: Array(5).fill("x") }).score).toBe(10);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.CRITICAL, requestedCapabilities: ["a", "b"] }).score).toBe(15);
  });

  it("rounds the weighted sum half up and caps at 100", () => {
    // modelVolatility 7 × 0.15 = 1.05 → 1; 10 × 0.15 = 1.5 → 2.
    expect(scoreRisk({ ...ZERO, temperature: 0.14 }).score).toBe(1);
    expect(scoreRisk({ ...ZERO, temperature: 0.2 }).score).toBe(2);
    const everything = scoreRisk({
      toolCount: 10,
      temperature: 2,
      dataSensitivity: DataSensitivity.PII,
      customFlags: Array(5).fill("x"),
      adapterRiskClass: RiskLevel.CRITICAL,
      requestedCapabilities: Array(6).fill("c"),
      skillState: SkillState.DEPRECATED,
    });
    expect(everything.score).toBe(96);
    expect(everything.level).toBe(RiskLevel.CRITICAL);
  });
});

describe("risk levels: low < 25 ≤ medium < 50 ≤ high < 75 ≤ critical", () => {
  it("maps the boundary scores", () => {
    expect([0, 24, 25, 49, 50, 74, 75, 100].map(riskLevelOf)).toEqual([
      RiskLevel.LOW,
      RiskLevel.LOW,
      RiskLevel.MEDIUM,
      RiskLevel.MEDIUM,
      RiskLevel.HIGH,
      RiskLevel.HIGH,
      RiskLevel.CRITICAL,
      RiskLevel.CRITICAL,
    ]);
  });

  it("reaches each boundary from real signals", () => {
    // Unknown skill (50 × 0.2 = 10) + tools (3 each) + flags (2 each) + high data (14).
    const base: RiskSignals = { temperature: 0, skillPinned: false };
    const at = (s: RiskSignals) => scoreRisk({ ...base, ...s });
    expect(at({ toolCount: 4, customFlags: ["x"] })).toMatchObject({ score: 24, level: RiskLevel.LOW });
    expect(at({ toolCount: 5 })).toMatchObject({ score: 25, level: RiskLevel.MEDIUM });
    expect(at({ toolCount: 5, dataSensitivity: DataSensitivity.HIGH, customFlags: Array(5).fill("x") })).toMatchObject({ score: 49, level: RiskLevel.MEDIUM });
    expect(at({ toolCount: 5, dataSensitivity: DataSensitivity.HIGH, customFlags: Array(5).fill("x"), temperature: 0.14 })).toMatchObject({
      score: 50,
      level: RiskLevel.HIGH,
    });
    // 15 (tools) + 10 (skill) + 20 (PII) + 10 (flags) + 15 (adapter 100) = 70, plus volatility × 0.15.
    const top: RiskSignals = { toolCount: 5, dataSensitivity: DataSensitivity.PII, customFlags: Array(5).fill("x"), adapterRiskClass: RiskLevel.HIGH, requestedCapabilities: Array(6).fill("c") };
    expect(at({ ...top, temperature: 0.54 })).toMatchObject({ score: 74, level: RiskLevel.HIGH }); // 74.05
    expect(at({ ...top, temperature: 0.6 })).toMatchObject({ score: 75, level: RiskLevel.CRITICAL }); // 74.5 rounds up
  });
});

describe("recommendations", () => {
  it("gives none for a mature, pinned, calm, narrow execution", () => {
    expect(scoreRisk(ZERO).recommendations).toEqual([]);
  });

  it("advises on each documented condition", () => {
    const result = scoreRisk({
      toolCount: 5,
      skillState: SkillState.DRAFT,
      skillPinned: false,
      temperature: 1.2,
      dataSensitivity: DataSensitivity.HIGH,
      adapterRiskClass: RiskLevel.CRITICAL,
    });
    expect(result.recommendations).toEqual([
      "Test the skill and promote it to active before production use",
      "Pin the skill version so the execution is reproducible",
      "Lower the temperature to reduce output variability",
      "Review whether every tool is necessary and remove the rest",
      "Make sure redaction is enabled for this tenant's traces",
      "Require approval for executions through this high-risk adapter",
    ]);
  });

  it("does not ask to promote a tested skill at maturity 30 or an active one", () => {
    expect(scoreRisk({ ...ZERO, skillState: SkillState.TESTED }).recommendations).toEqual([]);
    expect(scoreRisk({ ...ZERO, skillState: SkillState.ACTIVE, skillPinned: false }).recommendations).toEqual([
      "Pin the skill version so the execution is reproducible",
    ]);
    expect(scoreRisk({ ...ZERO, adapterRiskClass: RiskLevel.MEDIUM }).recommendations).toEqual([]);
  });
});
