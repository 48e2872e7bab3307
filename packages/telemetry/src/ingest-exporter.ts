import { context, ROOT_CONTEXT } from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Code, ConnectError } from "@connectrpc/connect";
import { Counter, Gauge } from "prom-client";
import type { Logger } from "pino";
import { ATTR, isExecutionSpanOperation } from "./clasper-attributes.js";
import { toIngestSpan, type IngestSpan } from "./ingest-span.js";
import type { Metrics } from "./metrics.js";

export interface IngestSpanProcessorOptions {
  /**
   * The verified tenant of the code starting a span (the caller's identity in the async
   * context). Read when the span starts, never from its attributes, which any code can set.
   */
  tenantOf(): string | undefined;
  /**
   * Delivers one batch of one tenant's spans; resolves once the trace service acknowledged them.
   * `signal` aborts an attempt that outlived `sendTimeoutMs` or the shutdown deadline.
   */
  send(tenantId: string, spans: IngestSpan[], signal: AbortSignal): Promise<void>;
  /** Spans held at most (queued and in flight); beyond it the oldest are dropped. Default 10,000. */
  maxQueueSize?: number;
  /** Spans per IngestSpans call, at most 1000 (the request's limit). Default 500. */
  maxBatchSize?: number;
  /** How long a tenant's first queued span waits for company before its batch is sent. Default 1 s. */
  batchDelayMs?: number;
  /** Backoff after the first failed attempt, doubling per failure. Default 200 ms. */
  retryBaseMs?: number;
  /** Longest backoff between attempts. Default 10 s. */
  retryMaxMs?: number;
  /** An attempt not answered by then counts as failed. Default 10 s. */
  sendTimeoutMs?: number;
  /** How long forceFlush and shutdown keep retrying. Default 10 s. */
  flushTimeoutMs?: number;
  /** Registers clasper_span_delivery_* series on this registry. */
  metrics?: Metrics;
  logger?: Logger;
  /** Jitter source in [0, 1); tests pin it. */
  random?: () => number;
}

export interface SpanDeliveryStats {
  /** Spans waiting or in flight. */
  readonly queued: number;
  /** Spans the trace service acknowledged. */
  readonly sent: number;
  /** Spans given up on: no tenant, queue full, rejected as invalid, or still queued at shutdown. */
  readonly dropped: number;
  /** IngestSpans attempts that failed (each is retried). */
  readonly failedAttempts: number;
}

export interface IngestSpanProcessor extends SpanProcessor {
  stats(): SpanDeliveryStats;
}

type DropReason = "no_tenant" | "queue_full" | "rejected" | "unconvertible" | "shutdown";

/**
 * Exponential backoff with "equal jitter": half the doubled delay is fixed, half random, so
 * retries from many processes spread out yet never follow a failure immediately.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/**
 * An invalid request stays invalid however often it is resent; retrying it would stall the
 * tenant's queue for good. Everything else (unavailable, timeouts, auth during a secret
 * rotation, a trace service not deployed yet) may pass later.
 */
function isPermanent(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.InvalidArgument;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface Queued {
  /** Global arrival order, to find the oldest span across tenants. */
  readonly seq: number;
  readonly queuedAt: number;
  readonly span: IngestSpan;
}

type Sleep = "batch" | "backoff";

/** One tenant's spans in arrival order; the head (up to a batch) is what is in flight. */
class TenantQueue {
  readonly entries: Queued[] = [];
  failures = 0;
  pumping = false;
  inFlight: AbortController | undefined;
  private sleeping: { kind: Sleep; timer: NodeJS.Timeout; resolve: () => void } | undefined;

  sleep(kind: Sleep, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(), ms);
      // Pending spans are delivered by shutdown(); a timer must not keep the process alive.
      timer.unref();
      this.sleeping = { kind, timer, resolve };
    });
  }

  /** Ends the current wait, or only a wait of `kind`. */
  wake(kind?: Sleep): void {
    const sleeping = this.sleeping;
    if (!sleeping || (kind && sleeping.kind !== kind)) return;
    this.sleeping = undefined;
    clearTimeout(sleeping.timer);
    sleeping.resolve();
  }
}

interface DeliveryCounters {
  sent(count: number): void;
  dropped(count: number, reason: DropReason): void;
  failed(): void;
}

function deliveryCounters(metrics: Metrics | undefined, queued: () => number): DeliveryCounters {
  if (!metrics) return { sent: () => {}, dropped: () => {}, failed: () => {} };
  const registers = [metrics.registry];
  new Gauge({
    name: "clasper_span_delivery_queued",
    help: "Execution spans waiting for, or in, delivery to the trace service.",
    registers,
    collect() {
      this.set(queued());
    },
  });
  const sent = new Counter({ name: "clasper_span_delivery_sent_total", help: "Execution spans the trace service acknowledged.", registers });
  const dropped = new Counter({
    name: "clasper_span_delivery_dropped_total",
    help: "Execution spans never delivered to the trace service, by reason.",
    labelNames: ["reason"] as const,
    registers,
  });
  const failed = new Counter({
    name: "clasper_span_delivery_failed_attempts_total",
    help: "IngestSpans attempts that failed and were retried.",
    registers,
  });
  return {
    sent: (count) => sent.inc(count),
    dropped: (count, reason) => dropped.inc({ reason }, count),
    failed: () => failed.inc(),
  };
}

/** Settles with the send, or rejects when the attempt is aborted (timeout, shutdown). */
function raceAbort(attempt: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    attempt.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Delivers execution spans to Clasper's trace service, at least once, per tenant.
 *
 * Not a BatchSpanProcessor + SpanExporter pair: an exporter sees neither the tenant (which must
 * be captured when the span starts, from the verified caller) nor its own retries, and the SDK's
 * batcher drops the newest spans when full and abandons a batch after one failed export.
 */
class TenantIngestProcessor implements IngestSpanProcessor {
  private readonly tenantOfSpan = new WeakMap<Span | ReadableSpan, string>();
  private readonly queues = new Map<string, TenantQueue>();
  private readonly progressListeners = new Set<() => void>();
  private readonly counters: DeliveryCounters;
  private readonly maxQueueSize: number;
  private readonly maxBatchSize: number;
  private readonly random: () => number;
  private seq = 0;
  private queued = 0;
  private sent = 0;
  private dropped = 0;
  private failedAttempts = 0;
  private flushing = 0;
  private stopped = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: IngestSpanProcessorOptions) {
    this.maxQueueSize = options.maxQueueSize ?? 10_000;
    this.maxBatchSize = options.maxBatchSize ?? 500;
    if (!Number.isInteger(this.maxQueueSize) || this.maxQueueSize < 1) throw new Error("maxQueueSize must be a positive integer");
    if (!Number.isInteger(this.maxBatchSize) || this.maxBatchSize < 1 || this.maxBatchSize > 1000) {
      throw new Error("maxBatchSize must be an integer from 1 to 1000 (the IngestSpans limit)");
    }
    this.random = options.random ?? Math.random;
    this.counters = deliveryCounters(options.metrics, () => this.queued);
  }

  stats(): SpanDeliveryStats {
    return { queued: this.queued, sent: this.sent, dropped: this.dropped, failedAttempts: this.failedAttempts };
  }

  onStart(span: Span): void {
    if (this.stopped) return;
    try {
      const tenantId = this.options.tenantOf();
      if (tenantId) this.tenantOfSpan.set(span, tenantId);
    } catch (error) {
      this.options.logger?.warn({ err: messageOf(error) }, "span delivery: reading the tenant failed");
    }
  }

  onEnd(span: ReadableSpan): void {
    // Called synchronously from span.end() in application code: nothing may escape.
    try {
      if (!isExecutionSpanOperation(span.attributes[ATTR.operationName])) return;
      const tenantId = this.tenantOfSpan.get(span);
      this.tenantOfSpan.delete(span);
      if (tenantId === undefined) return this.drop(1, "no_tenant");
      if (this.stopped) return this.drop(1, "shutdown");
      this.enqueue(tenantId, toIngestSpan(span));
    } catch (error) {
      this.drop(1, "unconvertible");
      this.options.logger?.error({ err: messageOf(error) }, "span delivery: span could not be queued");
    }
  }

  /** Sends every span queued before the call, retrying until `flushTimeoutMs`; never rejects. */
  async forceFlush(): Promise<void> {
    const mark = this.seq;
    const deadline = Date.now() + (this.options.flushTimeoutMs ?? 10_000);
    this.flushing++;
    try {
      for (const [tenantId, queue] of this.queues) {
        queue.wake();
        this.pump(tenantId, queue);
      }
      while (this.hasQueuedUpTo(mark)) {
        const left = deadline - Date.now();
        if (left <= 0) {
          this.options.logger?.warn({ queued: this.queued }, "span delivery: flush deadline passed with spans undelivered");
          return;
        }
        await this.progress(left);
      }
    } finally {
      this.flushing--;
    }
  }

  /** Flushes, then stops; spans still undelivered after the flush deadline count as dropped. */
  shutdown(): Promise<void> {
    return (this.stopping ??= (async () => {
      await this.forceFlush();
      this.stopped = true;
      for (const queue of this.queues.values()) {
        queue.inFlight?.abort(new Error("span delivery shut down"));
        queue.wake();
        this.drop(queue.entries.length, "shutdown");
        this.queued -= queue.entries.length;
        queue.entries.length = 0;
      }
      this.queues.clear();
    })());
  }

  private enqueue(tenantId: string, span: IngestSpan): void {
    let queue = this.queues.get(tenantId);
    if (!queue) {
      queue = new TenantQueue();
      this.queues.set(tenantId, queue);
    }
    queue.entries.push({ seq: ++this.seq, queuedAt: Date.now(), span });
    this.queued++;
    if (this.queued > this.maxQueueSize) this.dropOldest();
    // A full batch need not wait out the batching delay (but a backoff is never cut short).
    if (queue.entries.length >= this.maxBatchSize) queue.wake("batch");
    this.pump(tenantId, queue);
  }

  /** The oldest span of all tenants, even one in flight: the next attempt simply leaves it out. */
  private dropOldest(): void {
    let oldest: TenantQueue | undefined;
    for (const queue of this.queues.values()) {
      const head = queue.entries[0];
      if (head && (!oldest || head.seq < oldest.entries[0]!.seq)) oldest = queue;
    }
    if (!oldest) return;
    oldest.entries.shift();
    this.queued--;
    this.drop(1, "queue_full");
  }

  private drop(count: number, reason: DropReason): void {
    if (count === 0) return;
    this.dropped += count;
    this.counters.dropped(count, reason);
    this.notifyProgress();
  }

  /**
   * Starts the tenant's delivery loop unless it runs. The loop runs outside every span and
   * with tracing suppressed: it is started from whatever span happened to end, and its own RPCs
   * would otherwise join that caller's trace.
   */
  private pump(tenantId: string, queue: TenantQueue): void {
    if (queue.pumping || this.stopped) return;
    queue.pumping = true;
    void context.with(suppressTracing(ROOT_CONTEXT), () => this.deliver(tenantId, queue)).finally(() => {
      queue.pumping = false;
      // A span may have arrived after the loop found the queue empty but before this ran.
      if (queue.entries.length > 0) this.pump(tenantId, queue);
      else if (this.queues.get(tenantId) === queue) this.queues.delete(tenantId);
    });
  }

  private async deliver(tenantId: string, queue: TenantQueue): Promise<void> {
    while (!this.stopped && queue.entries.length > 0) {
      const wait = this.batchWait(queue);
      if (wait > 0) {
        await queue.sleep("batch", wait);
        continue;
      }
      await this.attempt(tenantId, queue);
    }
  }

  /** How long the head of the queue should still wait for more spans to share its batch. */
  private batchWait(queue: TenantQueue): number {
    const head = queue.entries[0];
    if (!head || this.flushing > 0 || queue.failures > 0 || queue.entries.length >= this.maxBatchSize) return 0;
    return head.queuedAt + (this.options.batchDelayMs ?? 1000) - Date.now();
  }

  private async attempt(tenantId: string, queue: TenantQueue): Promise<void> {
    const batch = queue.entries.slice(0, this.maxBatchSize);
    const abort = new AbortController();
    const timeoutMs = this.options.sendTimeoutMs ?? 10_000;
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    queue.inFlight = abort;
    try {
      await raceAbort(
        Promise.resolve().then(() => this.options.send(tenantId, batch.map((entry) => entry.span), abort.signal)),
        abort.signal,
      );
    } catch (error) {
      if (this.stopped) return;
      this.failed(tenantId, queue, batch, error);
      if (queue.failures > 0) {
        await queue.sleep("backoff", backoffDelay(queue.failures, this.options.retryBaseMs ?? 200, this.options.retryMaxMs ?? 10_000, this.random));
      }
      return;
    } finally {
      clearTimeout(timer);
      queue.inFlight = undefined;
    }
    queue.failures = 0;
    const acknowledged = this.removeBatch(queue, batch);
    this.sent += acknowledged;
    this.counters.sent(acknowledged);
    this.notifyProgress();
  }

  private failed(tenantId: string, queue: TenantQueue, batch: Queued[], error: unknown): void {
    this.failedAttempts++;
    this.counters.failed();
    if (isPermanent(error)) {
      queue.failures = 0;
      this.drop(this.removeBatch(queue, batch), "rejected");
      this.options.logger?.error({ tenant_id: tenantId, spans: batch.length, err: messageOf(error) }, "span delivery: trace service rejected a batch; dropped");
      return;
    }
    queue.failures++;
    this.options.logger?.warn(
      { tenant_id: tenantId, spans: batch.length, attempt: queue.failures, err: messageOf(error) },
      "span delivery: sending spans failed; will retry",
    );
    this.notifyProgress();
  }

  /**
   * Removes what is left of `batch` from the queue and returns how many that was. The batch was
   * the queue's head and only the head is ever removed meanwhile (by dropOldest), so what is left
   * of it is still the head: every entry up to the batch's last sequence number.
   */
  private removeBatch(queue: TenantQueue, batch: Queued[]): number {
    const last = batch[batch.length - 1]?.seq ?? 0;
    let count = 0;
    while (count < queue.entries.length && queue.entries[count]!.seq <= last) count++;
    queue.entries.splice(0, count);
    this.queued -= count;
    return count;
  }

  private hasQueuedUpTo(mark: number): boolean {
    for (const queue of this.queues.values()) {
      const head = queue.entries[0];
      if (head && head.seq <= mark) return true;
    }
    return false;
  }

  /** Resolves at the next send, failure or drop, or after `ms`. */
  private progress(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.progressListeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.progressListeners.add(done);
    });
  }

  private notifyProgress(): void {
    for (const listener of [...this.progressListeners]) listener();
  }
}

/**
 * A span processor that ships execution spans (gen_ai.operation.name invoke_agent, chat,
 * execute_tool, clasper.governance_decision) to Clasper's trace service, batched per tenant, with
 * retries until acknowledged. Add it with `telemetry.addSpanProcessor`; other spans are ignored
 * here and still reach OTLP through their own processor.
 */
export function createIngestSpanProcessor(options: IngestSpanProcessorOptions): IngestSpanProcessor {
  return new TenantIngestProcessor(options);
}
