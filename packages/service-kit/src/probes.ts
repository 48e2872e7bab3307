import type { Metrics } from "@clasper/telemetry";
import type { HealthRegistry } from "./health.js";

/** The little of a Node request/response (HTTP/1.1 or HTTP/2) the probes touch. */
interface Req {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
}
interface Res {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body: string): unknown;
}

function sendJson(res: Res, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

/**
 * Kubernetes probes and Prometheus scraping over plain HTTP/1.1: /healthz answers while the
 * process runs, /readyz only while its dependencies (the database) answer.
 */
export function probeHandler(health: HealthRegistry, metrics: Metrics) {
  return async (req: Req, res: Res): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 404, { error: { code: "not_found", message: `no route for ${req.method} ${path}` } });
      return;
    }
    if (path === "/healthz") {
      sendJson(res, 200, { status: "ok" });
    } else if (path === "/readyz") {
      const result = await health.check();
      sendJson(res, result.ok ? 200 : 503, result.ok ? { status: "ok" } : { status: "unavailable", error: result.error });
    } else if (path === "/metrics") {
      const text = await metrics.metricsText();
      res.writeHead(200, { "content-type": metrics.contentType });
      res.end(text);
    } else {
      sendJson(res, 404, { error: { code: "not_found", message: `no route for GET ${path}` } });
    }
  };
}
