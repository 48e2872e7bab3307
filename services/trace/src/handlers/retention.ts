import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf } from "@clasper/auth";
import {
  GetRetentionPolicyResponseSchema,
  RetentionPolicySchema,
  RetentionStorageMode,
  SamplingStrategy,
  SetRetentionPolicyResponseSchema,
  type GetRetentionPolicyRequest,
  type GetRetentionPolicyResponse,
  type RetentionPolicy,
  type SetRetentionPolicyRequest,
  type SetRetentionPolicyResponse,
} from "@clasper/proto";
import { DEFAULT_RETENTION, findRetentionPolicy, upsertRetentionPolicy, type RetentionPolicyRow } from "../store/retention.js";
import type { SamplingStrategyValue, StorageModeValue, TraceDatabase } from "../store/schema.js";

const SAMPLING_TO_DB: Partial<Record<SamplingStrategy, SamplingStrategyValue>> = {
  [SamplingStrategy.FULL]: "full",
  [SamplingStrategy.SAMPLED]: "sampled",
  [SamplingStrategy.ERRORS_ONLY]: "errors_only",
};
const STORAGE_TO_DB: Partial<Record<RetentionStorageMode, StorageModeValue>> = {
  [RetentionStorageMode.FULL]: "full",
  [RetentionStorageMode.SUMMARY]: "summary",
  [RetentionStorageMode.MINIMAL]: "minimal",
};
const SAMPLING_FROM_DB: Record<SamplingStrategyValue, SamplingStrategy> = {
  full: SamplingStrategy.FULL,
  sampled: SamplingStrategy.SAMPLED,
  errors_only: SamplingStrategy.ERRORS_ONLY,
};
const STORAGE_FROM_DB: Record<StorageModeValue, RetentionStorageMode> = {
  full: RetentionStorageMode.FULL,
  summary: RetentionStorageMode.SUMMARY,
  minimal: RetentionStorageMode.MINIMAL,
};

/** The stored policy, or the defaults (flagged is_default) for a tenant that never set one. */
function toProto(row: RetentionPolicyRow | undefined): RetentionPolicy {
  const values = row ?? DEFAULT_RETENTION;
  return create(RetentionPolicySchema, {
    retentionDays: values.retention_days,
    samplingStrategy: SAMPLING_FROM_DB[values.sampling_strategy],
    storageMode: STORAGE_FROM_DB[values.storage_mode],
    sampleRate: values.sample_rate,
    isDefault: row === undefined,
    ...(row ? { createdAt: timestampFromDate(row.created_at), updatedAt: timestampFromDate(row.updated_at) } : {}),
  });
}

/** POST/GET /retention/policy: the caller's tenant's trace retention policy. */
export class RetentionHandlers {
  constructor(private readonly db: Kysely<TraceDatabase>) {}

  async setRetentionPolicy(req: SetRetentionPolicyRequest, ctx: HandlerContext): Promise<SetRetentionPolicyResponse> {
    const { tenantId } = principalOf(ctx);
    const samplingStrategy = SAMPLING_TO_DB[req.samplingStrategy];
    const storageMode = STORAGE_TO_DB[req.storageMode];
    const row = await upsertRetentionPolicy(this.db, tenantId, {
      ...(req.retentionDays !== undefined ? { retention_days: req.retentionDays } : {}),
      ...(samplingStrategy ? { sampling_strategy: samplingStrategy } : {}),
      ...(storageMode ? { storage_mode: storageMode } : {}),
      ...(req.sampleRate !== undefined ? { sample_rate: req.sampleRate } : {}),
    });
    return create(SetRetentionPolicyResponseSchema, { policy: toProto(row) });
  }

  async getRetentionPolicy(_req: GetRetentionPolicyRequest, ctx: HandlerContext): Promise<GetRetentionPolicyResponse> {
    const { tenantId } = principalOf(ctx);
    return create(GetRetentionPolicyResponseSchema, { policy: toProto(await findRetentionPolicy(this.db, tenantId)) });
  }
}
