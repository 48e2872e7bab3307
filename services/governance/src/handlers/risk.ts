import { create } from "@bufbuild/protobuf";
import { RiskFactorsSchema, ScoreRiskResponseSchema, type ScoreRiskRequest, type ScoreRiskResponse } from "@clasper/proto";
import { scoreRisk } from "../risk.js";

/** POST /risk/score: a risk score from execution signals (seed §5.5); stateless. */
export class RiskHandlers {
  async scoreRisk(req: ScoreRiskRequest): Promise<ScoreRiskResponse> {
    const result = scoreRisk(req);
    return create(ScoreRiskResponseSchema, {
      riskScore: result.score,
      riskLevel: result.level,
      factors: create(RiskFactorsSchema, result.factors),
      riskFactors: result.riskFactors,
      recommendations: result.recommendations,
    });
  }
}
