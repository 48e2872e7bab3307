import { createHash } from "node:crypto";
import { TraceStatus } from "@clasper/proto";
import type { SamplingStrategyValue } from "../store/schema.js";

/*
 * Sampling per the tenant's retention policy. Whether a trace has an error is only known once
 * its spans are in, and they arrive in several batches, so nothing is dropped span by span:
 *   - full: every trace is kept;
 *   - sampled: a trace whose id hashes below sample_rate is kept outright (all its spans agree,
 *     whatever batch they come in); any other trace is kept only if it ends in error or blocked;
 *   - errors_only: a trace is kept only if it ends in error or blocked.
 * A trace not kept outright is stored while it runs and decided when its invoke_agent span
 * arrives (the execution ended): if it is not kept, its spans and summary are deleted and its id
 * recorded, so spans of it that arrive later or are re-sent are dropped (sampled_out) too.
 * Limitation: an error reported only by a span that arrives AFTER the invoke_agent span cannot
 * rescue a trace already dropped; the runtime sets the execution's error on invoke_agent itself.
 */

export interface SamplingPolicy {
  sampling_strategy: SamplingStrategyValue;
  sample_rate: number;
}

/** Deterministic per trace id: a hash, so even sequential or hand-made ids spread evenly. */
export function inSample(traceId: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  const h = createHash("sha256").update(traceId).digest().readUInt32BE(0);
  return h / 0x1_0000_0000 < rate;
}

/** True when the trace must be decided on completion (it is not kept whatever happens). */
export function decidedOnCompletion(policy: SamplingPolicy, traceId: string): boolean {
  switch (policy.sampling_strategy) {
    case "full":
      return false;
    case "sampled":
      return !inSample(traceId, policy.sample_rate);
    case "errors_only":
      return true;
  }
}

/** Whether a completed trace that is decided on completion is kept. */
export function keptOnCompletion(status: TraceStatus): boolean {
  return status === TraceStatus.ERROR || status === TraceStatus.BLOCKED;
}
