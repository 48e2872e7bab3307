import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { createContextSigner, runAsService } from "@clasper/auth";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import { ATTR, GENAI_OPERATION, startTelemetry, type Telemetry } from "@clasper/telemetry";
import { clientInterceptors, createPeerClients, remoteTransport, startSpanDelivery, type SpanDelivery } from "@clasper/service-kit";
import { freePorts, spawnClasper, type ClasperProcess } from "./support/processes.js";

const onPostgres = testBackendFromEnv() === "postgres";
if (!onPostgres) {
  console.warn("span delivery across a trace-service restart needs separate processes sharing PostgreSQL; skipped on PGlite (single-process)");
}

const SECRET = "span-delivery-restart-secret-0123456789abcdef";
const TENANT = "tenant-restart";

describe.skipIf(!onPostgres)("span delivery survives a trace service restart", () => {
  let database: FreshDatabase;
  let port: number;
  let trace: ClasperProcess | undefined;
  let telemetry: Telemetry;
  let delivery: SpanDelivery;

  const startTrace = async () => {
    const proc = spawnClasper("trace", ["serve", "--service", "trace"], {
      NODE_ENV: "test",
      LOG_LEVEL: "info",
      CLASPER_HOST: "127.0.0.1",
      CLASPER_PORT: String(port),
      CLASPER_INTERNAL_SECRET: SECRET,
      DATABASE_URL: database.url!,
    });
    await proc.waitForLog((line) => line.msg === "service listening", "trace service listening");
    return proc;
  };

  /** Ends `count` chat spans of one trace, each worth 10 input and 3 output tokens, as the tenant. */
  const emitChatSpans = (traceParent: string, count: number) =>
    runAsService(createContextSigner(SECRET), TENANT, () => {
      for (let i = 0; i < count; i++) {
        const span = telemetry.tracer.startSpan(`chat stub-model`, {
          attributes: {
            [ATTR.operationName]: GENAI_OPERATION.chat,
            [ATTR.requestModel]: "stub-model",
            [ATTR.usageInputTokens]: 10,
            [ATTR.usageOutputTokens]: 3,
            [ATTR.costMicros]: 7,
            "clasper.test.parent": traceParent,
          },
        });
        span.end();
      }
    });

  beforeAll(async () => {
    database = await freshDatabase("clasper");
    [port] = (await freePorts(1)) as [number];
    trace = await startTrace();
    telemetry = startTelemetry({ serviceName: "span-delivery-test", env: {} });
    const peers = createPeerClients(() => remoteTransport(`http://127.0.0.1:${port}`, clientInterceptors({ telemetry, forwardContext: true })));
    delivery = startSpanDelivery({ telemetry, peers, signer: createContextSigner(SECRET) });
  });

  afterAll(async () => {
    await telemetry?.shutdown();
    await trace?.stop();
    await database?.drop();
  });

  it("delivers every span exactly once when the service is down while spans are queued", async () => {
    await emitChatSpans("before", 40);
    await delivery.flush();
    const stored = async () =>
      (await sql<{ n: string }>`select count(*)::text as n from trace.spans where tenant_id = ${TENANT}`.execute(database.kysely)).rows[0]!.n;
    expect(await stored()).toBe("40");

    // The trace service goes away; spans keep coming and queue up while delivery retries.
    await trace!.stop();
    await emitChatSpans("during", 60);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(delivery.stats().failedAttempts).toBeGreaterThan(0);
    expect(await stored()).toBe("40");

    // Back on the same address: the queue drains, nothing lost, nothing twice.
    trace = await startTrace();
    await delivery.flush();
    expect(await stored()).toBe("100");
    expect(delivery.stats().dropped).toBe(0);
    const totals = (
      await sql<{ input: string; output: string; cost: string; llm: string }>`
        select sum(input_tokens)::text as input, sum(output_tokens)::text as output, sum(cost_micros)::text as cost, sum(llm_call_count)::text as llm
        from trace.traces where tenant_id = ${TENANT}`.execute(database.kysely)
    ).rows[0]!;
    expect(totals).toEqual({ input: "1000", output: "300", cost: "700", llm: "100" });
  });
});
