import type { Context } from "@opentelemetry/api";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace-base";

/**
 * SDK 2.x providers take their span processors only at construction, but processors arrive
 * later (the exporter to Clasper's trace service needs a client built after telemetry starts).
 * The provider gets this one processor, which forwards to every processor added so far.
 */
export class FanOutSpanProcessor implements SpanProcessor {
  private readonly processors: SpanProcessor[] = [];
  private isShutdown = false;

  add(processor: SpanProcessor): void {
    // A processor added after shutdown would never be flushed: its spans would be lost silently.
    if (this.isShutdown) throw new Error("telemetry is shut down; cannot add a span processor");
    this.processors.push(processor);
  }

  onStart(span: Span, parentContext: Context): void {
    for (const processor of this.processors) processor.onStart(span, parentContext);
  }

  onEnding(span: Span): void {
    for (const processor of this.processors) processor.onEnding?.(span);
  }

  onEnd(span: ReadableSpan): void {
    for (const processor of this.processors) processor.onEnd(span);
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.processors.map((processor) => processor.forceFlush()));
  }

  async shutdown(): Promise<void> {
    this.isShutdown = true;
    await Promise.all(this.processors.map((processor) => processor.shutdown()));
  }
}
