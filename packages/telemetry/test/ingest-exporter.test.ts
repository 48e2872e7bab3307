import { AsyncLocalStorage } from "node:async_hooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Tracer } from "@opentelemetry/api";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  SpanKind as ProtoSpanKind,
  SpanSchema,
  SpanStatusCode as ProtoSpanStatusCode,
} from "@clasper/proto";
import {
  ATTR,
  createIngestSpanProcessor,
  createMetrics,
  startTelemetry,
  type IngestSpan,
  type IngestSpanProcessorOptions,
  type Telemetry,
} from "../src/index.js";
import { backoffDelay } from "../src/ingest-exporter.js";

/** Stands in for the auth interceptor's scope: the verified tenant of the code that runs. */
const tenants = new AsyncLocalStorage<string>();
const asTenant = <T>(tenantId: string, fn: () => T): T => tenants.run(tenantId, fn);

interface Batch {
  tenantId: string;
  spans: IngestSpan[];
}

const running: Telemetry[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(running.splice(0).map((telemetry) => telemetry.shutdown()));
});

/** A process's telemetry with the processor added, recording what `send` was given. */
function rig(options: Partial<IngestSpanProcessorOptions> = {}) {
  const telemetry = startTelemetry({ serviceName: "clasper-runtime", env: {} });
  running.push(telemetry);
  const batches: Batch[] = [];
  const processor = createIngestSpanProcessor({
    tenantOf: () => tenants.getStore(),
    send: async (tenantId, spans) => {
      batches.push({ tenantId, spans });
    },
    batchDelayMs: 10,
    retryBaseMs: 2,
    retryMaxMs: 20,
    ...options,
  });
  telemetry.addSpanProcessor(processor);
  return { telemetry, tracer: telemetry.tracer, processor, batches };
}

function execution(tracer: Tracer, name: string, attributes: Attributes = {}): void {
  tracer.startSpan(name, { attributes: { [ATTR.operationName]: "chat", ...attributes } }).end();
}

const names = (batches: Batch[]) => batches.flatMap((batch) => batch.spans.map((span) => span.name ?? ""));

describe("conversion to clasper.trace.v1.Span", () => {
  it("keeps ids, nanosecond timestamps, kind, status, typed attributes, arrays, events and service name", async () => {
    const { tracer, processor, batches } = rig();
    let parentId = "";
    asTenant("acme", () => {
      const parent = tracer.startSpan("invoke_agent support", { attributes: { [ATTR.operationName]: "invoke_agent" } });
      parentId = parent.spanContext().spanId;
      const span = tracer.startSpan(
        "chat gpt-4o-mini",
        {
          kind: SpanKind.CLIENT,
          startTime: [1_700_000_000, 123_456_789],
          attributes: {
            [ATTR.operationName]: "chat",
            [ATTR.requestModel]: "gpt-4o-mini",
            [ATTR.usageInputTokens]: 1234,
            [ATTR.requestTemperature]: 0.25,
            [ATTR.requestStream]: true,
            [ATTR.responseFinishReasons]: ["stop", "length"],
            "test.ints": [1, 2, 3],
            "test.doubles": [0.5, 1.5],
            "test.bools": [true, false],
            "test.holes": ["a", null, "c"],
            "test.huge": 2 ** 60,
            [ATTR.inputMessages]: '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
          },
        },
        trace.setSpan(context.active(), parent),
      );
      span.addEvent("exception", { "exception.type": "TimeoutError", "exception.message": "slow" }, [1_700_000_000, 500_000_001]);
      span.setStatus({ code: SpanStatusCode.ERROR, message: "provider timed out" });
      span.end([1_700_000_001, 987_654_321]);
      parent.end();
    });
    await processor.forceFlush();

    const sent = batches.flatMap((batch) => batch.spans);
    const converted = sent.find((span) => span.name === "chat gpt-4o-mini")!;
    // It is a valid message of the contract, and survives the wire unchanged.
    const span = fromBinary(SpanSchema, toBinary(SpanSchema, create(SpanSchema, converted)));
    expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.parentSpanId).toBe(parentId);
    expect(sent.find((s) => s.name === "invoke_agent support")?.parentSpanId).toBe("");
    expect(span.kind).toBe(ProtoSpanKind.CLIENT);
    expect(span.startTime).toMatchObject({ seconds: 1_700_000_000n, nanos: 123_456_789 });
    expect(span.endTime).toMatchObject({ seconds: 1_700_000_001n, nanos: 987_654_321 });
    expect(span.status).toMatchObject({ code: ProtoSpanStatusCode.ERROR, message: "provider timed out" });
    expect(span.serviceName).toBe("clasper-runtime");

    const value = (key: string) => span.attributes.find((attribute) => attribute.key === key)?.value?.value;
    const array = (key: string) => {
      const found = value(key);
      return found?.case === "arrayValue" ? found.value.values.map((item) => item.value) : undefined;
    };
    expect(value(ATTR.requestModel)).toEqual({ case: "stringValue", value: "gpt-4o-mini" });
    expect(value(ATTR.usageInputTokens)).toEqual({ case: "intValue", value: 1234n });
    expect(value(ATTR.requestTemperature)).toEqual({ case: "doubleValue", value: 0.25 });
    expect(value(ATTR.requestStream)).toEqual({ case: "boolValue", value: true });
    expect(value("test.huge")).toEqual({ case: "doubleValue", value: 2 ** 60 });
    // Content goes to the trace service, which redacts it before storing.
    expect(value(ATTR.inputMessages)?.case).toBe("stringValue");
    expect(array(ATTR.responseFinishReasons)).toEqual([
      { case: "stringValue", value: "stop" },
      { case: "stringValue", value: "length" },
    ]);
    expect(array("test.ints")).toEqual([1n, 2n, 3n].map((v) => ({ case: "intValue", value: v })));
    expect(array("test.doubles")).toEqual([0.5, 1.5].map((v) => ({ case: "doubleValue", value: v })));
    expect(array("test.bools")).toEqual([true, false].map((v) => ({ case: "boolValue", value: v })));
    expect(array("test.holes")).toEqual([
      { case: "stringValue", value: "a" },
      { case: undefined },
      { case: "stringValue", value: "c" },
    ]);

    expect(span.events).toHaveLength(1);
    const [event] = span.events;
    expect(event?.name).toBe("exception");
    expect(event?.time).toMatchObject({ seconds: 1_700_000_000n, nanos: 500_000_001 });
    expect(event?.attributes.map((a) => [a.key, a.value?.value.value])).toEqual([
      ["exception.type", "TimeoutError"],
      ["exception.message", "slow"],
    ]);
  });

  it("trims a span to the bounds the trace service validates, so one span cannot sink its batch", async () => {
    const { tracer, processor, batches } = rig();
    asTenant("acme", () => {
      const attributes: Attributes = { [ATTR.operationName]: "execute_tool", ["k".repeat(300)]: "too long a key" };
      for (let i = 0; i < 300; i++) attributes[`a${i}`] = i;
      const span = tracer.startSpan("é".repeat(600), { attributes });
      span.setStatus({ code: SpanStatusCode.ERROR, message: "x".repeat(10_000) });
      span.setAttribute("big.array", Array.from({ length: 1500 }, (_, i) => i));
      span.end();
    });
    await processor.forceFlush();
    const [span] = batches[0]!.spans;
    // The SDK's own limit (128 attributes) applies first; what reaches us stays within ours.
    expect(span?.attributes?.length).toBeLessThanOrEqual(256);
    expect(span?.attributes?.some((a) => (a.key ?? "").length > 256)).toBe(false);
    expect(Array.from(span?.name ?? "")).toHaveLength(512);
    expect(span?.status?.message).toHaveLength(8192);
  });
});

describe("which spans are delivered, and for whom", () => {
  it("delivers only execution spans; RPC plumbing and other operations are neither sent nor counted", async () => {
    const { tracer, processor, batches } = rig();
    asTenant("acme", () => {
      tracer.startSpan("clasper.runtime.v1.RuntimeService/Execute", { kind: SpanKind.SERVER }).end();
      tracer.startSpan("embeddings", { attributes: { [ATTR.operationName]: "embeddings" } }).end();
      for (const operation of ["invoke_agent", "chat", "execute_tool", "clasper.governance_decision"]) {
        execution(tracer, operation, { [ATTR.operationName]: operation });
      }
      // The operation may be named after the span started.
      const late = tracer.startSpan("late");
      late.setAttribute(ATTR.operationName, "chat");
      late.end();
    });
    await processor.forceFlush();
    expect(names(batches).sort()).toEqual(["chat", "clasper.governance_decision", "execute_tool", "invoke_agent", "late"]);
    expect(processor.stats()).toEqual({ queued: 0, sent: 5, dropped: 0, failedAttempts: 0 });
  });

  it("takes the tenant of the code that started the span, wherever it ends, and never from attributes", async () => {
    const { tracer, processor, batches } = rig();
    const started = asTenant("acme", () =>
      tracer.startSpan("chat", { attributes: { [ATTR.operationName]: "chat", "clasper.tenant.id": "globex", "tenant.id": "globex" } }),
    );
    const startedToo = asTenant("acme", () => tracer.startSpan("chat 2", { attributes: { [ATTR.operationName]: "chat" } }));
    // Ended outside any scope, and inside another tenant's scope.
    await new Promise((resolve) => setTimeout(resolve, 1));
    started.end();
    asTenant("globex", () => startedToo.end());
    await processor.forceFlush();
    expect(batches.map((batch) => [batch.tenantId, batch.spans.map((span) => span.name)])).toEqual([["acme", ["chat", "chat 2"]]]);
  });

  it("drops and counts execution spans started without a verified tenant", async () => {
    const metrics = createMetrics({ serviceName: "clasper-runtime" });
    const { tracer, processor, batches } = rig({ metrics });
    execution(tracer, "anonymous");
    const span = tracer.startSpan("tenant set too late", { attributes: { [ATTR.operationName]: "chat" } });
    asTenant("acme", () => span.end());
    await processor.forceFlush();
    expect(batches).toEqual([]);
    expect(processor.stats()).toEqual({ queued: 0, sent: 0, dropped: 2, failedAttempts: 0 });
    expect(await metrics.metricsText()).toMatch(/clasper_span_delivery_dropped_total\{reason="no_tenant",service_name="clasper-runtime"\} 2/);
  });

  it("never throws from span.end(), even when reading the tenant fails", async () => {
    const { tracer, processor } = rig({
      tenantOf: () => {
        throw new Error("scope broken");
      },
    });
    expect(() => execution(tracer, "chat")).not.toThrow();
    await processor.forceFlush();
    expect(processor.stats().dropped).toBe(1);
  });
});

describe("batching", () => {
  it("sends one batch per tenant, never mixing tenants", async () => {
    const { tracer, processor, batches } = rig({ batchDelayMs: 60_000 });
    for (let i = 0; i < 6; i++) asTenant(i % 2 ? "acme" : "globex", () => execution(tracer, `chat ${i}`));
    await processor.forceFlush();
    expect(batches.map((batch) => [batch.tenantId, batch.spans.map((span) => span.name)]).sort()).toEqual([
      ["acme", ["chat 1", "chat 3", "chat 5"]],
      ["globex", ["chat 0", "chat 2", "chat 4"]],
    ]);
  });

  it("sends a full batch of 500 at once and the rest after 1 s", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const { tracer, batches } = rig({ batchDelayMs: undefined });
    asTenant("acme", () => {
      for (let i = 0; i < 1001; i++) execution(tracer, `chat ${i}`);
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((batch) => batch.spans.length)).toEqual([500, 500]);
    await vi.advanceTimersByTimeAsync(998);
    expect(batches).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2);
    expect(batches.map((batch) => batch.spans.length)).toEqual([500, 500, 1]);
    expect(names(batches)).toEqual(Array.from({ length: 1001 }, (_, i) => `chat ${i}`));
  });

  it("never strands a span that arrives while a tenant's delivery loop is finishing", async () => {
    // One late span per run, ending a chosen number of microtasks after the first send: some
    // depth lands between the loop finding its queue empty and the loop being marked finished.
    for (let depth = 0; depth < 40; depth++) {
      const delivered: string[] = [];
      const { tracer } = rig({
        batchDelayMs: 0,
        send: async (_tenantId, spans) => {
          delivered.push(...spans.map((span) => span.name ?? ""));
          if (delivered.length > 1) return;
          let chain = Promise.resolve();
          for (let i = 0; i < depth; i++) chain = chain.then(() => undefined);
          // ROOT_CONTEXT: send runs with tracing suppressed, and this stands for application code.
          void chain.then(() => context.with(ROOT_CONTEXT, () => asTenant("acme", () => execution(tracer, "late"))));
        },
      });
      asTenant("acme", () => execution(tracer, "first"));
      await vi.waitFor(() => expect(delivered, `late span at depth ${depth}`).toEqual(["first", "late"]), { timeout: 200, interval: 5 });
    }
  });
});

describe("retries", () => {
  it("backs off exponentially with jitter from 200 ms, capped at 10 s", () => {
    const delays = [1, 2, 3, 4, 6, 7, 20].map((attempt) => backoffDelay(attempt, 200, 10_000, () => 1));
    expect(delays).toEqual([200, 400, 800, 1600, 6400, 10_000, 10_000]);
    expect(backoffDelay(3, 200, 10_000, () => 0)).toBe(400);
    expect(backoffDelay(3, 200, 10_000, () => 0.5)).toBe(600);
  });

  it("retries a failing send on that schedule until it is acknowledged", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const attempts: number[] = [];
    const delivered: Batch[] = [];
    const start = Date.now();
    const { tracer, processor } = rig({
      batchDelayMs: 0,
      retryBaseMs: undefined,
      retryMaxMs: undefined,
      random: () => 1,
      send: async (tenantId, spans) => {
        attempts.push(Date.now() - start);
        if (attempts.length <= 4) throw new ConnectError("trace service down", Code.Unavailable);
        delivered.push({ tenantId, spans });
      },
    });
    asTenant("acme", () => execution(tracer, "chat"));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(attempts).toEqual([0, 200, 600, 1400, 3000]);
    expect(names(delivered)).toEqual(["chat"]);
    expect(processor.stats()).toEqual({ queued: 0, sent: 1, dropped: 0, failedAttempts: 4 });
  });

  it("delivers every span at least once through failures and lost acknowledgements", async () => {
    // Deterministic chaos: some attempts fail before storing, some store and then lose the answer.
    let call = 0;
    const stored: string[] = [];
    const { tracer, processor } = rig({
      maxBatchSize: 7,
      send: async (tenantId, spans) => {
        call++;
        if (call % 3 === 1) throw new ConnectError("unavailable", Code.Unavailable);
        for (const span of spans) stored.push(`${tenantId}/${span.spanId}`);
        if (call % 5 === 0) throw new ConnectError("connection reset after commit", Code.Unavailable);
      },
    });
    const emitted: string[] = [];
    for (let i = 0; i < 60; i++) {
      const tenantId = ["acme", "globex", "initech"][i % 3]!;
      asTenant(tenantId, () => {
        const span = tracer.startSpan(`chat ${i}`, { attributes: { [ATTR.operationName]: "chat" } });
        emitted.push(`${tenantId}/${span.spanContext().spanId}`);
        span.end();
      });
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 3));
    }
    await processor.forceFlush();
    expect(new Set(stored)).toEqual(new Set(emitted));
    const stats = processor.stats();
    expect(stats).toMatchObject({ queued: 0, sent: 60, dropped: 0 });
    expect(stats.failedAttempts).toBeGreaterThan(0);
  });

  it("drops a batch the trace service rejects as invalid instead of retrying it forever", async () => {
    const { tracer, processor } = rig({
      send: async () => {
        throw new ConnectError("spans[0].name: value is required", Code.InvalidArgument);
      },
    });
    asTenant("acme", () => execution(tracer, "chat"));
    await processor.forceFlush();
    expect(processor.stats()).toEqual({ queued: 0, sent: 0, dropped: 1, failedAttempts: 1 });
  });
});

describe("bounded buffer", () => {
  it("drops the oldest spans across tenants when full, counts them, and delivers the rest", async () => {
    const metrics = createMetrics({ serviceName: "clasper-runtime" });
    const { tracer, processor, batches } = rig({ maxQueueSize: 5, batchDelayMs: 60_000, metrics });
    for (let i = 0; i < 8; i++) asTenant(i % 2 ? "acme" : "globex", () => execution(tracer, `chat ${i}`));
    expect(processor.stats()).toEqual({ queued: 5, sent: 0, dropped: 3, failedAttempts: 0 });
    const text = await metrics.metricsText();
    expect(text).toMatch(/clasper_span_delivery_queued\{service_name="clasper-runtime"\} 5/);
    expect(text).toMatch(/clasper_span_delivery_dropped_total\{reason="queue_full",service_name="clasper-runtime"\} 3/);

    await processor.forceFlush();
    expect(names(batches).sort()).toEqual(["chat 3", "chat 4", "chat 5", "chat 6", "chat 7"]);
    expect(processor.stats()).toEqual({ queued: 0, sent: 5, dropped: 3, failedAttempts: 0 });
    expect(await metrics.metricsText()).toMatch(/clasper_span_delivery_sent_total\{service_name="clasper-runtime"\} 5/);
  });

  it("drops the oldest even while they are in flight; the retry leaves them out", async () => {
    let failNext: (() => void) | undefined;
    const sends: string[][] = [];
    const { tracer, processor } = rig({
      maxQueueSize: 3,
      batchDelayMs: 0,
      send: (_tenantId, spans) => {
        sends.push(spans.map((span) => span.name ?? ""));
        if (sends.length > 1) return Promise.resolve();
        return new Promise((_resolve, reject) => (failNext = () => reject(new Error("lost"))));
      },
    });
    asTenant("acme", () => execution(tracer, "chat 0"));
    await vi.waitFor(() => expect(sends).toHaveLength(1));
    asTenant("acme", () => ["chat 1", "chat 2", "chat 3", "chat 4"].forEach((name) => execution(tracer, name)));
    failNext!();
    await processor.forceFlush();
    expect(sends).toEqual([["chat 0"], ["chat 2", "chat 3", "chat 4"]]);
    expect(processor.stats()).toEqual({ queued: 0, sent: 3, dropped: 2, failedAttempts: 1 });
  });
});

describe("flush and shutdown", () => {
  it("shutdown (through telemetry) delivers every queued span without waiting for the batch delay", async () => {
    const { telemetry, tracer, processor, batches } = rig({ batchDelayMs: 60_000 });
    asTenant("acme", () => ["chat 1", "chat 2"].forEach((name) => execution(tracer, name)));
    asTenant("globex", () => execution(tracer, "chat 3"));
    const started = Date.now();
    await telemetry.shutdown();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(names(batches).sort()).toEqual(["chat 1", "chat 2", "chat 3"]);
    expect(processor.stats()).toEqual({ queued: 0, sent: 3, dropped: 0, failedAttempts: 0 });
  });

  it("forceFlush keeps retrying within its deadline, then resolves; shutdown counts what is left as dropped", async () => {
    let healthy = false;
    const { tracer, processor, batches } = rig({
      flushTimeoutMs: 150,
      send: async (tenantId, spans) => {
        if (!healthy) throw new ConnectError("down", Code.Unavailable);
        batches.push({ tenantId, spans });
      },
    });
    asTenant("acme", () => execution(tracer, "chat"));
    await processor.forceFlush();
    expect(processor.stats()).toMatchObject({ queued: 1, sent: 0 });
    expect(processor.stats().failedAttempts).toBeGreaterThan(1);

    healthy = true;
    await processor.forceFlush();
    expect(names(batches)).toEqual(["chat"]);

    healthy = false;
    asTenant("acme", () => execution(tracer, "after"));
    await processor.shutdown();
    expect(processor.stats()).toMatchObject({ queued: 0, sent: 1, dropped: 1 });
  });

  it("aborts an attempt that gets no answer, and retries it", async () => {
    let calls = 0;
    const { tracer, processor, batches } = rig({
      sendTimeoutMs: 20,
      send: (tenantId, spans, signal) => {
        calls++;
        if (calls === 1) return new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
        batches.push({ tenantId, spans });
        return Promise.resolve();
      },
    });
    asTenant("acme", () => execution(tracer, "chat"));
    await processor.forceFlush();
    expect(names(batches)).toEqual(["chat"]);
    expect(processor.stats()).toMatchObject({ sent: 1, failedAttempts: 1 });
  });
});
