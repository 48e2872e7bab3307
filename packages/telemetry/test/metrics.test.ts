import { describe, expect, it } from "vitest";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { register as globalRegistry } from "prom-client";
import { createMetrics, metricsInterceptor } from "../src/index.js";
import { Health, healthRoutes } from "./health-service.js";

/** The value of the one sample of `name` carrying exactly `labels` (label order is not part of the format). */
function sampleValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort())) return Number(match[3]);
  }
  return undefined;
}

describe("metrics", () => {
  it("exposes RPC and HTTP duration histograms and process metrics on an own registry", async () => {
    const metrics = createMetrics({ serviceName: "gateway" });
    const transport = createRouterTransport(healthRoutes(), { router: { interceptors: [metricsInterceptor(metrics)] } });
    const client = createClient(Health, transport);
    await client.check({ service: "" });
    await client.check({ service: "" });
    await client.check({ service: "missing" }).catch(() => undefined);
    for await (const _ of client.watch({ service: "" })) {
      // drain: the stream's duration is observed when it ends
    }
    metrics.httpServerDuration.observe({ method: "GET", route: "/healthz", status_code: "200" }, 0.002);

    const text = await metrics.metricsText();
    const rpc = { service: "grpc.health.v1.Health", service_name: "gateway" };
    expect(sampleValue(text, "rpc_server_duration_seconds_count", { ...rpc, method: "Check", code: "ok" })).toBe(2);
    expect(sampleValue(text, "rpc_server_duration_seconds_count", { ...rpc, method: "Check", code: "not_found" })).toBe(1);
    expect(sampleValue(text, "rpc_server_duration_seconds_count", { ...rpc, method: "Watch", code: "ok" })).toBe(1);
    const http = { method: "GET", route: "/healthz", status_code: "200", service_name: "gateway" };
    expect(sampleValue(text, "http_server_request_duration_seconds_bucket", { ...http, le: "0.005" })).toBe(1);
    expect(sampleValue(text, "http_server_request_duration_seconds_bucket", { ...http, le: "0.001" })).toBeUndefined();
    expect(text).toContain("# TYPE process_cpu_user_seconds_total counter");
    expect(metrics.contentType).toMatch(/^text\/plain/);
    expect(await globalRegistry.metrics()).not.toContain("rpc_server_duration_seconds");
  });
});
