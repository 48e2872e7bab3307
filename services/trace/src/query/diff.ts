import { create, equals } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import {
  DiffContextSchema,
  DiffCostSchema,
  DiffErrorsSchema,
  DiffModelSchema,
  DiffOutputSchema,
  DiffSkillsSchema,
  DiffStepsSchema,
  DiffSummarySchema,
  DiffTimingSchema,
  DiffToolCallsSchema,
  DiffUsageSchema,
  DiffWorkspaceSchema,
  SkillVersionChangeSchema,
  StepType,
  ToolCallChangeSchema,
  TraceDiffSchema,
  TraceStatus,
  type TokenUsage,
  type ToolCallSummary,
  type Trace,
  type TraceDiff,
} from "@clasper/proto";

/** |cost change| above this percentage is significant (seed §4.3). */
const SIGNIFICANT_COST_PERCENT = 20;

/** Input tokens in all: normal-rate plus cache reads and writes. */
function inputTokens(u: TokenUsage | undefined): bigint {
  return (u?.promptTokens ?? 0n) + (u?.cacheReadTokens ?? 0n) + (u?.cacheWriteTokens ?? 0n);
}

function percent(base: bigint, delta: bigint): number | undefined {
  return base > 0n ? (Number(delta) / Number(base)) * 100 : undefined;
}

function diffSkills(base: Record<string, string>, compare: Record<string, string>) {
  const names = [...new Set([...Object.keys(base), ...Object.keys(compare)])].sort();
  const skills = create(DiffSkillsSchema);
  for (const name of names) {
    const b = base[name];
    const c = compare[name];
    if (b === undefined) skills.added.push(name);
    else if (c === undefined) skills.removed.push(name);
    else if (b !== c) skills.changed.push(create(SkillVersionChangeSchema, { name, baseVersion: b, compareVersion: c }));
    else skills.unchanged.push(name);
  }
  return skills;
}

function valueEqual(a: Value | undefined, b: Value | undefined): boolean {
  if (!a || !b) return a === b;
  return equals(ValueSchema, a, b);
}

/** Calls grouped by tool name, compared pairwise by index within each name (seed §4.3). */
function diffToolCalls(base: readonly ToolCallSummary[], compare: readonly ToolCallSummary[]) {
  const group = (calls: readonly ToolCallSummary[]) => {
    const byName = new Map<string, ToolCallSummary[]>();
    for (const call of calls) byName.set(call.toolName, [...(byName.get(call.toolName) ?? []), call]);
    return byName;
  };
  const b = group(base);
  const c = group(compare);
  const result = create(DiffToolCallsSchema, { baseCount: base.length, compareCount: compare.length });
  for (const name of [...new Set([...b.keys(), ...c.keys()])].sort()) {
    const bs = b.get(name) ?? [];
    const cs = c.get(name) ?? [];
    for (let index = 0; index < Math.max(bs.length, cs.length); index++) {
      const x = bs[index];
      const y = cs[index];
      if (!x) result.added.push(name);
      else if (!y) result.removed.push(name);
      else {
        const change = create(ToolCallChangeSchema, {
          toolName: name,
          index,
          argumentsChanged: !valueEqual(x.arguments, y.arguments),
          resultChanged: !valueEqual(x.result, y.result),
          successChanged: x.success !== y.success,
          durationDeltaMs: y.durationMs - x.durationMs,
        });
        if (change.argumentsChanged || change.resultChanged || change.successChanged) result.changed.push(change);
        else result.unchangedCount += 1;
      }
    }
  }
  return result;
}

function countSteps(trace: Trace, type: StepType): number {
  return trace.steps.filter((s) => s.type === type).length;
}

function diffSteps(base: Trace, compare: Trace) {
  const length = Math.max(base.steps.length, compare.steps.length);
  let structural = 0;
  for (let i = 0; i < length; i++) if (base.steps[i]?.type !== compare.steps[i]?.type) structural += 1;
  return create(DiffStepsSchema, {
    baseStepCount: base.steps.length,
    compareStepCount: compare.steps.length,
    llmCallCountDelta: countSteps(compare, StepType.LLM_CALL) - countSteps(base, StepType.LLM_CALL),
    toolCallCountDelta: countSteps(compare, StepType.TOOL_CALL) - countSteps(base, StepType.TOOL_CALL),
    errorCountDelta: countSteps(compare, StepType.ERROR) - countSteps(base, StepType.ERROR),
    structuralDifferences: structural,
  });
}

function hasError(trace: Trace): boolean {
  return trace.status === TraceStatus.ERROR || trace.status === TraceStatus.BLOCKED || trace.errorCode !== "" || trace.errorMessage !== "";
}

function errorText(trace: Trace): string {
  return trace.errorMessage || trace.errorCode;
}

/**
 * Structured comparison of two traces of one tenant (seed §4.3, improved): usage counts cache
 * tokens as input; tool calls differ when any call was added, removed or changed (the original
 * ignored changed arguments/results); the error status changes when either side's failure or
 * its message changes; a cost appearing from zero is significant.
 */
export function diffTraces(base: Trace, compare: Trace): TraceDiff {
  const durationDelta = compare.durationMs - base.durationMs;
  const costDelta = compare.costMicros - base.costMicros;
  const baseIn = inputTokens(base.usage);
  const compareIn = inputTokens(compare.usage);
  const baseOut = base.usage?.completionTokens ?? 0n;
  const compareOut = compare.usage?.completionTokens ?? 0n;
  const model = create(DiffModelSchema, {
    baseModel: base.model,
    compareModel: compare.model,
    baseProvider: base.provider,
    compareProvider: compare.provider,
    changed: base.model !== compare.model || base.provider !== compare.provider,
  });
  const workspace = create(DiffWorkspaceSchema, {
    baseHash: base.workspaceVersionHash,
    compareHash: compare.workspaceVersionHash,
    changed: base.workspaceVersionHash !== compare.workspaceVersionHash,
  });
  const skills = diffSkills(base.skillVersions, compare.skillVersions);
  const cost = create(DiffCostSchema, {
    baseCostMicros: base.costMicros,
    compareCostMicros: compare.costMicros,
    deltaMicros: costDelta,
    percentChange: percent(base.costMicros, costDelta),
  });
  const toolCalls = diffToolCalls(base.output?.toolCalls ?? [], compare.output?.toolCalls ?? []);
  const baseMessage = base.output?.message ?? "";
  const compareMessage = compare.output?.message ?? "";
  const output = create(DiffOutputSchema, {
    baseHasOutput: baseMessage !== "",
    compareHasOutput: compareMessage !== "",
    messagesEqual: baseMessage === compareMessage,
    baseMessageLength: [...baseMessage].length,
    compareMessageLength: [...compareMessage].length,
    messageLengthDelta: [...compareMessage].length - [...baseMessage].length,
  });
  const errors = create(DiffErrorsSchema, {
    baseError: errorText(base),
    compareError: errorText(compare),
    baseHasError: hasError(base),
    compareHasError: hasError(compare),
  });

  const significant: string[] = [];
  if (model.changed) significant.push("Model changed");
  if (workspace.changed) significant.push("Workspace changed");
  if (skills.changed.length + skills.added.length + skills.removed.length > 0) significant.push("Skill versions changed");
  if (toolCalls.added.length + toolCalls.removed.length + toolCalls.changed.length > 0) significant.push("Tool calls differ");
  if (errors.baseHasError !== errors.compareHasError || errors.baseError !== errors.compareError) significant.push("Error status changed");
  if (cost.percentChange === undefined ? costDelta !== 0n : Math.abs(cost.percentChange) > SIGNIFICANT_COST_PERCENT) significant.push("Cost changed significantly");
  if (!output.messagesEqual) significant.push("Output message differs");

  return create(TraceDiffSchema, {
    baseTraceId: base.traceId,
    compareTraceId: compare.traceId,
    context: create(DiffContextSchema, { sameWorkspace: base.workspaceId === compare.workspaceId, sameAgent: base.agentRole === compare.agentRole }),
    timing: create(DiffTimingSchema, {
      baseDurationMs: base.durationMs,
      compareDurationMs: compare.durationMs,
      deltaMs: durationDelta,
      percentChange: percent(base.durationMs, durationDelta),
    }),
    model,
    workspace,
    skills,
    usage: create(DiffUsageSchema, {
      baseInputTokens: baseIn,
      compareInputTokens: compareIn,
      baseOutputTokens: baseOut,
      compareOutputTokens: compareOut,
      inputTokenDelta: compareIn - baseIn,
      outputTokenDelta: compareOut - baseOut,
      totalTokenDelta: compareIn + compareOut - (baseIn + baseOut),
    }),
    cost,
    toolCalls,
    steps: diffSteps(base, compare),
    output,
    errors,
    summary: create(DiffSummarySchema, { significantChanges: significant, totalDifferences: significant.length }),
  });
}

const dollars = (micros: bigint) => `$${(Number(micros) / 1e6).toFixed(4)}`;
const signed = (n: number | bigint, digits?: number) => {
  const text = digits === undefined ? String(n) : Number(n).toFixed(digits);
  return Number(n) >= 0 ? `+${text}` : text;
};
const tokens = (label: string, base: bigint, compare: bigint) => `  ${label}: ${base} -> ${compare} (${signed(compare - base)})`;

/**
 * The human-readable summary (seed §4.3 formatDiffSummary, costs in dollars), plus token lines
 * with cache and reasoning tokens from both traces' usage.
 */
export function formatDiffSummary(diff: TraceDiff, base: Trace, compare: Trace): string {
  const lines = [`Trace Diff: ${diff.baseTraceId} vs ${diff.compareTraceId}`, ""];
  const changes = diff.summary?.significantChanges ?? [];
  if (changes.length === 0) lines.push("No significant changes detected.");
  else lines.push("Significant changes:", ...changes.map((c) => `  - ${c}`));
  lines.push("", "Summary:");
  const m = diff.model;
  if (m?.changed) lines.push(`  Model: ${m.baseModel} (${m.baseProvider}) -> ${m.compareModel} (${m.compareProvider})`);
  const c = diff.cost;
  if (c) {
    const pct = c.percentChange === undefined ? "" : ` (${signed(c.percentChange, 1)}%)`;
    lines.push(`  Cost: ${dollars(c.baseCostMicros)} -> ${dollars(c.compareCostMicros)}${pct}`);
  }
  const t = diff.timing;
  if (t) lines.push(`  Duration: ${t.baseDurationMs}ms -> ${t.compareDurationMs}ms (${signed(t.deltaMs)}ms)`);
  const u = diff.usage;
  if (u) {
    lines.push(tokens("Input tokens", u.baseInputTokens, u.compareInputTokens), tokens("Output tokens", u.baseOutputTokens, u.compareOutputTokens));
    const bu = base.usage;
    const cu = compare.usage;
    lines.push(tokens("Cache read tokens", bu?.cacheReadTokens ?? 0n, cu?.cacheReadTokens ?? 0n));
    lines.push(tokens("Cache write tokens", bu?.cacheWriteTokens ?? 0n, cu?.cacheWriteTokens ?? 0n));
    lines.push(tokens("Reasoning tokens", bu?.reasoningTokens ?? 0n, cu?.reasoningTokens ?? 0n));
  }
  const tc = diff.toolCalls;
  if (tc) {
    lines.push(`  Tool calls: ${tc.baseCount} -> ${tc.compareCount}`);
    if (tc.added.length > 0) lines.push(`    Added: ${tc.added.join(", ")}`);
    if (tc.removed.length > 0) lines.push(`    Removed: ${tc.removed.join(", ")}`);
    if (tc.changed.length > 0) lines.push(`    Changed: ${tc.changed.map((x) => `${x.toolName}#${x.index}`).join(", ")}`);
  }
  const s = diff.steps;
  if (s) lines.push(`  Steps: ${s.baseStepCount} -> ${s.compareStepCount}`);
  const e = diff.errors;
  if (e && (e.baseHasError || e.compareHasError)) lines.push(`  Error: ${e.baseError || "none"} -> ${e.compareError || "none"}`);
  for (const change of diff.skills?.changed ?? []) lines.push(`  Skill ${change.name}: ${change.baseVersion} -> ${change.compareVersion}`);
  for (const name of diff.skills?.added ?? []) lines.push(`  Skill ${name}: added (${compare.skillVersions[name]})`);
  for (const name of diff.skills?.removed ?? []) lines.push(`  Skill ${name}: removed (${base.skillVersions[name]})`);
  return lines.join("\n");
}
