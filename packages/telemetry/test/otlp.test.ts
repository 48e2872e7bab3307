import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTelemetry, type Telemetry } from "../src/index.js";
import { startOtlpCollector, type OtlpCollector } from "./otlp-collector.js";

let collector: OtlpCollector;
let endpoint: string;
let received: OtlpCollector["received"];

beforeAll(async () => {
  collector = await startOtlpCollector();
  ({ endpoint, received } = collector);
});
beforeEach(() => {
  received.length = 0;
});
afterAll(() => collector.close());

async function emitOneSpan(telemetry: Telemetry, name = "exported-span"): Promise<void> {
  telemetry.tracer.startSpan(name).end();
  await telemetry.shutdown();
}

describe("OTLP export", () => {
  it("delivers spans with the resource to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces, flushed on shutdown", async () => {
    const telemetry = startTelemetry({
      serviceName: "runtime",
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_HEADERS: "x-collector-key=abc%20def",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=staging,service.name=ignored",
      },
    });
    await emitOneSpan(telemetry);

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request?.path).toBe("/v1/traces");
    expect(request?.headers["x-collector-key"]).toBe("abc def");
    expect(request?.body).toContain("exported-span");
    // The environment overrides the name given in code, so operators can rename a deployment.
    expect(request?.body).toContain('"stringValue":"ignored"');
    expect(request?.body).toContain('"stringValue":"staging"');
  });

  it("uses OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given and OTEL_SERVICE_NAME over everything", async () => {
    const telemetry = startTelemetry({
      serviceName: "runtime",
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/custom/path`, OTEL_SERVICE_NAME: "runtime-canary" },
    });
    expect(telemetry.serviceName).toBe("runtime-canary");
    await emitOneSpan(telemetry);
    expect(received.map((r) => r.path)).toEqual(["/custom/path"]);
    expect(received[0]?.body).toContain('"stringValue":"runtime-canary"');
  });

  it("exports nothing when no endpoint is set, when the exporter is none, or when the SDK is disabled", async () => {
    for (const env of [
      {},
      { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: "none" },
      { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: "true" },
    ]) {
      await emitOneSpan(startTelemetry({ serviceName: "quiet", env }));
    }
    expect(received).toEqual([]);
  });

  it("honours OTEL_TRACES_SAMPLER and its argument", async () => {
    const off = startTelemetry({ serviceName: "s", env: { OTEL_TRACES_SAMPLER: "always_off" } });
    expect(off.tracer.startSpan("x").isRecording()).toBe(false);
    const none = startTelemetry({ serviceName: "s", env: { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0" } });
    expect(none.tracer.startSpan("x").isRecording()).toBe(false);
    const all = startTelemetry({ serviceName: "s", env: { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1" } });
    expect(all.tracer.startSpan("x").isRecording()).toBe(true);
    await Promise.all([off, none, all].map((t) => t.shutdown()));
  });

  it("rejects an endpoint that is not a URL, naming the variable", () => {
    expect(() => startTelemetry({ serviceName: "s", env: { OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" } })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
  });
});
