import { enumNames } from "@clasper/core";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf, tenantWide } from "@clasper/auth";
import {
  SamplingStrategySchema,
  RetentionStorageModeSchema,
  EnforceRetentionResponseSchema,
  GetRetentionPolicyResponseSchema,
  GetRetentionStatsResponseSchema,
  RetentionEnforcementResultSchema,
  RetentionStatsSchema,
  RetentionPolicySchema,
  RetentionStorageMode,
  SamplingStrategy,
  SetRetentionPolicyResponseSchema,
  type EnforceRetentionRequest,
  type EnforceRetentionResponse,
  type GetRetentionPolicyRequest,
  type GetRetentionPolicyResponse,
  type GetRetentionStatsRequest,
  type GetRetentionStatsResponse,
  type RetentionPolicy,
  type SetRetentionPolicyRequest,
  type SetRetentionPolicyResponse,
} from "@clasper/proto";
import {
  countTracesBefore,
  DEFAULT_RETENTION,
  deleteTracesBefore,
  findRetentionPolicy,
  findRetentionRun,
  recordRetentionRun,
  retentionCounts,
  upsertRetentionPolicy,
  type RetentionPolicyRow,
} from "../store/retention.js";
import type { SamplingStrategyValue, StorageModeValue, TraceDatabase } from "../store/schema.js";

const SAMPLING = enumNames<SamplingStrategy, SamplingStrategyValue>(SamplingStrategySchema);
const STORAGE = enumNames<RetentionStorageMode, StorageModeValue>(RetentionStorageModeSchema);

/** The stored policy, or the defaults (flagged is_default) for a tenant that never set one. */
function toProto(row: RetentionPolicyRow | undefined): RetentionPolicy {
  const values = row ?? DEFAULT_RETENTION;
  return create(RetentionPolicySchema, {
    retentionDays: values.retention_days,
    samplingStrategy: SAMPLING.valueOf(values.sampling_strategy),
    storageMode: STORAGE.valueOf(values.storage_mode),
    sampleRate: values.sample_rate,
    isDefault: row === undefined,
    ...(row ? { createdAt: timestampFromDate(row.created_at), updatedAt: timestampFromDate(row.updated_at) } : {}),
  });
}

const DAY_MS = 86_400_000;

/** Traces started before this instant are past the policy (calendar days of 24 h, UTC). */
function cutoffFor(row: RetentionPolicyRow | undefined, now: Date): Date {
  return new Date(now.getTime() - (row ?? DEFAULT_RETENTION).retention_days * DAY_MS);
}

/** /retention/*: the caller's tenant's trace retention policy, its enforcement and state. */
export class RetentionHandlers {
  constructor(private readonly db: Kysely<TraceDatabase>) {}

  async setRetentionPolicy(req: SetRetentionPolicyRequest, ctx: HandlerContext): Promise<SetRetentionPolicyResponse> {
    const tenantId = tenantWide(principalOf(ctx), "the retention policy");
    const samplingStrategy = SAMPLING.nameOf(req.samplingStrategy);
    const storageMode = STORAGE.nameOf(req.storageMode);
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

  async enforceRetention(req: EnforceRetentionRequest, ctx: HandlerContext): Promise<EnforceRetentionResponse> {
    const tenantId = tenantWide(principalOf(ctx), "retention enforcement");
    const started = new Date();
    const cutoff = cutoffFor(await findRetentionPolicy(this.db, tenantId), started);
    let count: bigint;
    if (req.dryRun) {
      count = await countTracesBefore(this.db, tenantId, cutoff);
    } else {
      count = await deleteTracesBefore(this.db, tenantId, cutoff);
      await recordRetentionRun(this.db, tenantId, { at: started, cutoff, deleted: count });
    }
    return create(EnforceRetentionResponseSchema, {
      result: create(RetentionEnforcementResultSchema, {
        tracesDeleted: count,
        cutoffTime: timestampFromDate(cutoff),
        durationMs: BigInt(Date.now() - started.getTime()),
        dryRun: req.dryRun,
      }),
    });
  }

  async getRetentionStats(_req: GetRetentionStatsRequest, ctx: HandlerContext): Promise<GetRetentionStatsResponse> {
    // The policy is the tenant's; the counts are of what the caller may see.
    const { tenantId, workspaceId } = principalOf(ctx);
    const [policy, run] = await Promise.all([findRetentionPolicy(this.db, tenantId), findRetentionRun(this.db, tenantId)]);
    const counts = await retentionCounts(this.db, tenantId, cutoffFor(policy, new Date()), workspaceId);
    return create(GetRetentionStatsResponseSchema, {
      stats: create(RetentionStatsSchema, {
        policy: toProto(policy),
        traceCount: counts.total,
        oldTraceCount: counts.old,
        ...(counts.oldest ? { oldestTraceAt: timestampFromDate(counts.oldest) } : {}),
        needsCleanup: counts.old > 0n,
        ...(run ? { lastEnforcedAt: timestampFromDate(run.last_enforced_at) } : {}),
      }),
    });
  }
}
