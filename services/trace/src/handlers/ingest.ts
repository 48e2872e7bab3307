import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { principalOf } from "@clasper/auth";
import { withTransaction, type DatabaseKind } from "@clasper/db";
import { IngestSpansResponseSchema, type IngestSpansRequest, type IngestSpansResponse } from "@clasper/proto";
import type { ServiceDeps } from "@clasper/service-kit";
import { isExecutionSpanOperation } from "@clasper/telemetry";
import { assembleTraceDeltas, type AssembledSpan } from "../ingest/assemble.js";
import { normalizeBatch, type NormalizedSpan } from "../ingest/normalize.js";
import { BatchRedactor, redactSpan } from "../ingest/redact.js";
import { createTenantRedactors, type TenantRedactors } from "../ingest/redaction-rules.js";
import { decidedOnCompletion, keptOnCompletion, type SamplingPolicy } from "../ingest/sampling.js";
import { arrayEncodingFor, type ArrayEncoding } from "../store/recordset.js";
import { DEFAULT_RETENTION, findRetentionPolicy } from "../store/retention.js";
import type { TraceDatabase } from "../store/schema.js";
import {
  dropSampledOutTraces,
  findSampledOutTraces,
  insertSpans,
  spanIdentity,
  upsertTraceDeltas,
} from "../store/spans.js";

interface Outcome {
  accepted: number;
  duplicate: number;
  sampledOut: number;
}

/** First occurrence of each (trace, span) wins; the rest of the batch's copies are duplicates. */
function uniqueSpans(spans: readonly NormalizedSpan[]): NormalizedSpan[] {
  const seen = new Set<string>();
  return spans.filter((span) => {
    const id = spanIdentity(span.traceId, span.spanId);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** IngestSpans: spans from every Clasper process become stored spans and trace summaries. */
export class IngestHandlers {
  constructor(
    private readonly db: Kysely<TraceDatabase>,
    private readonly redactors: TenantRedactors,
    private readonly encoding: ArrayEncoding,
  ) {}

  async ingestSpans(req: IngestSpansRequest, ctx: HandlerContext): Promise<IngestSpansResponse> {
    // The tenant is the verified caller's; a span's attributes naming another are only data.
    const { tenantId } = principalOf(ctx);
    const all = normalizeBatch(req.spans);
    const unique = uniqueSpans(all);
    // RPC plumbing is not part of a trace (the exporter filters it too); it counts as sampled out.
    const steps = unique.filter((span) => isExecutionSpanOperation(span.operation));
    // Redaction happens before the transaction: nothing unredacted reaches the database, and a
    // retried transaction does not redact twice.
    const redactor = new BatchRedactor(await this.redactors.forTenant(tenantId));
    const assembled: AssembledSpan[] = steps.map((span) => ({ span, redactionTypes: redactSpan(span, redactor) }));
    const outcome = await withTransaction(this.db, (trx) => this.store(trx, tenantId, assembled));
    return create(IngestSpansResponseSchema, {
      accepted: outcome.accepted,
      duplicate: outcome.duplicate + (all.length - unique.length),
      sampledOut: outcome.sampledOut + (unique.length - steps.length),
    });
  }

  /** One transaction: spans, then the summaries of the traces they belong to, then sampling. */
  private async store(trx: Kysely<TraceDatabase>, tenantId: string, spans: readonly AssembledSpan[]): Promise<Outcome> {
    if (spans.length === 0) return { accepted: 0, duplicate: 0, sampledOut: 0 };
    const policy: SamplingPolicy = (await findRetentionPolicy(trx, tenantId)) ?? DEFAULT_RETENTION;
    const sampling = policy.sampling_strategy !== "full";
    const alreadyDropped = sampling ? await findSampledOutTraces(trx, tenantId, [...new Set(spans.map((s) => s.span.traceId))]) : new Set<string>();
    const candidates = spans.filter((s) => !alreadyDropped.has(s.span.traceId));
    const inserted = await insertSpans(trx, tenantId, candidates.map((s) => s.span), this.encoding);
    const fresh = candidates.filter((s) => inserted(s.span));
    const deltas = assembleTraceDeltas(fresh);
    const upserted = await upsertTraceDeltas(trx, tenantId, deltas, this.encoding);

    const dropped = new Set<string>();
    if (sampling) {
      // A trace is decided in the batch that brings its (winning) invoke_agent span.
      const rootKeys = new Map(deltas.map((d) => [d.traceId, d.root?.key]));
      for (const row of upserted) {
        const decidedNow = row.root_span_key !== null && rootKeys.get(row.trace_id) === row.root_span_key;
        if (decidedNow && decidedOnCompletion(policy, row.trace_id) && !keptOnCompletion(row.status)) dropped.add(row.trace_id);
      }
      // A concurrent batch may have dropped one of our traces while we waited for its row lock.
      const remaining = deltas.map((d) => d.traceId).filter((id) => !dropped.has(id));
      for (const id of await findSampledOutTraces(trx, tenantId, remaining)) dropped.add(id);
      await dropSampledOutTraces(trx, tenantId, [...dropped]);
    }

    const keptFresh = fresh.filter((s) => !dropped.has(s.span.traceId)).length;
    return {
      accepted: keptFresh,
      duplicate: candidates.length - fresh.length,
      sampledOut: spans.length - candidates.length + (fresh.length - keptFresh),
    };
  }
}

/**
 * The handler with its redaction rules source: governance's GetRedactionRules through the peer
 * client. The hash strategy's salt derives from CLASPER_INTERNAL_SECRET (per tenant); without one
 * (one-process dev mode) a per-process random secret is used, so hashes are stable only until restart.
 * `kind` decides how a batch's rows travel to the database (store/recordset.ts).
 */
export function createIngestHandlers(db: Kysely<TraceDatabase>, kind: DatabaseKind, deps: Pick<ServiceDeps, "peers" | "logger" | "env">): IngestHandlers {
  const redactors = createTenantRedactors({
    fetchRules: async () => (await deps.peers.governance.getRedactionRules({})).rules,
    saltSecret: deps.env["CLASPER_INTERNAL_SECRET"] || randomBytes(32).toString("hex"),
    logger: deps.logger,
  });
  return new IngestHandlers(db, redactors, arrayEncodingFor(kind));
}
