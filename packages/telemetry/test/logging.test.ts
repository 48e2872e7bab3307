import { describe, expect, it } from "vitest";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { SpanKind } from "@opentelemetry/api";
import { createLogger, loggingInterceptor, serverTracingInterceptor, withSpan } from "../src/index.js";
import { captureLines, Health, healthRoutes, recordingTelemetry, spanNamed } from "./health-service.js";

describe("createLogger", () => {
  it("writes JSON with service.name and the active span's ids, and redacts credentials", async () => {
    const { telemetry } = recordingTelemetry();
    const out = captureLines();
    const logger = createLogger({ serviceName: "runtime", destination: out.destination });

    const spanContext = await withSpan(telemetry.tracer, "work", {}, (span) => {
      logger.info(
        {
          headers: { authorization: "Bearer tok-auth", "x-agent-token": "tok-agent", "x-clasper-context": "tok-ctx", cookie: "tok-cookie" },
          req: { headers: { authorization: "Bearer tok-nested" } },
          user: { name: "ada", password: "tok-password" },
          provider: { secret: "tok-secret" },
        },
        "hello",
      );
      return span.spanContext();
    });
    logger.info("outside");

    const [inside, outside] = out.lines();
    expect(inside).toMatchObject({
      "service.name": "runtime",
      level: "info",
      msg: "hello",
      trace_id: spanContext.traceId,
      span_id: spanContext.spanId,
      user: { name: "ada", password: "[REDACTED]" },
    });
    expect(typeof inside?.time === "string" && !Number.isNaN(Date.parse(inside.time))).toBe(true);
    expect(out.raw[0]).not.toMatch(/tok-/);
    expect(outside).not.toHaveProperty("trace_id");
    await telemetry.shutdown();
  });

  it("takes the level from LOG_LEVEL", () => {
    const out = captureLines();
    const logger = createLogger({ serviceName: "s", destination: out.destination, env: { LOG_LEVEL: "warn" } });
    logger.info("dropped");
    logger.warn("kept");
    expect(out.lines().map((line) => line.msg)).toEqual(["kept"]);
  });
});

describe("loggingInterceptor", () => {
  function setup() {
    const recording = recordingTelemetry();
    const out = captureLines();
    const logger = createLogger({ serviceName: "health", destination: out.destination });
    const transport = createRouterTransport(healthRoutes(), {
      router: { interceptors: [serverTracingInterceptor(recording.telemetry), loggingInterceptor(logger)] },
    });
    return { ...recording, out, client: createClient(Health, transport) };
  }

  it("logs one line per RPC with procedure, code and duration, in the server span, without the body", async () => {
    const { client, out, spans, telemetry } = setup();
    await client.check({ service: "private-payload-value" });
    await client.check({ service: "missing" }).catch(() => undefined);

    const lines = out.lines();
    expect(lines).toHaveLength(2);
    const server = spanNamed(spans(), "grpc.health.v1.Health/Check", SpanKind.SERVER);
    expect(lines[0]).toMatchObject({ procedure: "/grpc.health.v1.Health/Check", code: "ok", level: "info" });
    expect(lines[1]).toMatchObject({ code: "not_found", level: "info" });
    expect(typeof lines[0]?.duration_ms).toBe("number");
    expect(lines.map((line) => line.trace_id)).toContain(server.spanContext().traceId);
    expect(out.raw.join("")).not.toContain("private-payload-value");
    await telemetry.shutdown();
  });

  it("logs an unexpected error at error level with its cause, and still fails the call", async () => {
    const { client, out, telemetry } = setup();
    await expect(client.check({ service: "boom" })).rejects.toMatchObject({ code: Code.Internal });

    const [line] = out.lines();
    // pino's error serializer folds the cause chain into the message and keeps the stack.
    expect(line).toMatchObject({
      level: "error",
      code: "internal",
      procedure: "/grpc.health.v1.Health/Check",
      err: { message: "database exploded: socket closed", stack: expect.stringContaining("socket closed") },
    });
    await telemetry.shutdown();
  });
});
