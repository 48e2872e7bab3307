import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { buildPrincipal, createContextSigner, CONTEXT_HEADER } from "@clasper/auth";
import { testBackendFromEnv } from "@clasper/db/testing";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus, TraceService } from "@clasper/proto";
import { SERVICES, startDistributed, type DistributedSystem, type Service } from "./support/distributed.js";
import { loadConnectNode, runClasper, spawnClasper, tryConnect } from "./support/processes.js";
import { signCallerToken } from "./support/system.js";

type ConnectNode = Awaited<ReturnType<typeof loadConnectNode>>;

const INTERNAL_SECRET_FOR_REFUSALS = "refusal-test-internal-secret-0123456789abcdef";
const PEER_URLS = {
  CLASPER_RUNTIME_URL: "http://127.0.0.1:1",
  CLASPER_TRACE_URL: "http://127.0.0.1:1",
  CLASPER_GOVERNANCE_URL: "http://127.0.0.1:1",
  CLASPER_REGISTRY_URL: "http://127.0.0.1:1",
  CLASPER_WORKSPACE_URL: "http://127.0.0.1:1",
};

/** The signed internal context the gateway would attach for this caller. */
async function contextFor(secret: string, tenantId: string, roles: string[] = ["admin"]): Promise<string> {
  return createContextSigner(secret).sign({
    principal: buildPrincipal({ kind: "user", tenantId, userId: "direct-caller", roles }),
    requestId: `direct-${tenantId}`,
  });
}

function rpcLines(sys: DistributedSystem, service: Service, procedure: string) {
  return sys.services[service].proc.logs.filter((l) => l.msg === "rpc" && l.procedure === procedure);
}

/** Polls until a TCP connect to the port is refused; resolves with the last outcome. */
async function waitUntilRefused(port: number, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let outcome = await tryConnect(port);
  while (outcome !== "ECONNREFUSED" && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    outcome = await tryConnect(port);
  }
  return outcome;
}

const backend = testBackendFromEnv();
if (backend !== "postgres") {
  console.warn(
    `distributed.test.ts: the multi-process tests are SKIPPED because CLASPER_TEST_DB=${backend}: embedded PGlite ` +
      "is single-process, and services in separate processes need a shared PostgreSQL. Run with CLASPER_TEST_DB=postgres.",
  );
}

describe.skipIf(backend !== "postgres")("distributed: five services and the gateway as separate processes", () => {
  let sys: DistributedSystem;
  let connectNode: ConnectNode;
  beforeAll(async () => {
    connectNode = await loadConnectNode();
    sys = await startDistributed();
  });
  afterAll(async () => {
    await sys?.stop();
  });

  /** Connect protocol, binary, HTTP/2: the transport the gateway itself uses towards services. */
  const h2Connect = (service: Service) =>
    connectNode.createConnectTransport({ baseUrl: sys.services[service].url, httpVersion: "2", useBinaryFormat: true });
  const grpc = (url: string) => connectNode.createGrpcTransport({ baseUrl: url });

  it("runs every component in its own process", () => {
    const pids = [sys.gateway.child.pid, ...SERVICES.map((s) => sys.services[s].proc.child.pid)];
    expect(new Set(pids).size).toBe(6);
    expect(pids).not.toContain(process.pid);
    for (const service of SERVICES) {
      expect(sys.services[service].url).toBe(`http://127.0.0.1:${sys.services[service].port}`);
    }
  });

  describe("through the gateway", () => {
    it("reports every remote component ok on /health", async () => {
      const { status, body } = await sys.call("GET", "/health");
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: "ok", version: "0.1.0", database: { status: "ok" } });
      expect(body.components).toEqual({
        gateway: { status: "ok" },
        trace: { status: "ok" },
        governance: { status: "ok" },
        registry: { status: "ok" },
        workspace: { status: "ok" },
        runtime: { status: "ok" },
      });
    });

    it("serves the OpenAPI document and the version without a token", async () => {
      const openapi = await sys.call("GET", "/openapi.json");
      expect(openapi.status).toBe(200);
      expect(openapi.body.openapi).toBe("3.1.0");
      expect(Object.keys(openapi.body.paths["/retention/policy"]).sort()).toEqual(["get", "post"]);
      const version = await sys.call("GET", "/api/version");
      expect(version).toMatchObject({ status: 200, body: { name: "Clasper", version: "0.1.0" } });
    });

    it("runs the retention slice end to end in the trace process", async () => {
      const procedure = "/clasper.trace.v1.TraceService/SetRetentionPolicy";
      const setsBefore = rpcLines(sys, "trace", procedure).length;
      const token = await signCallerToken({ tenant_id: "dist-a" });

      const before = await sys.call("GET", "/retention/policy", { token });
      expect(before.status).toBe(200);
      expect(before.body.policy).toMatchObject({ retention_days: 90, sampling_strategy: "full", is_default: true });

      const set = await sys.call("POST", "/retention/policy", { token, body: { retention_days: 14, sampling_strategy: "errors_only" } });
      expect(set.status).toBe(200);
      expect(set.body.policy).toMatchObject({ retention_days: 14, sampling_strategy: "errors_only", is_default: false });

      const after = await sys.call("GET", "/retention/policy", { token });
      expect(after.status).toBe(200);
      expect(after.body.policy).toEqual(set.body.policy);

      // The call was served by the trace child process (its own RPC log), not by the gateway.
      await sys.services.trace.proc.waitForLog(
        (l) => l.msg === "rpc" && l.procedure === procedure && rpcLines(sys, "trace", procedure).length > setsBefore,
        "SetRetentionPolicy rpc log line",
        5_000,
      );
      expect(rpcLines(sys, "trace", procedure).slice(setsBefore)).toEqual([expect.objectContaining({ code: "ok", "service.name": "clasper-trace" })]);
    });

    it("keeps tenants apart across processes", async () => {
      const a = await signCallerToken({ tenant_id: "dist-iso-a" });
      const b = await signCallerToken({ tenant_id: "dist-iso-b" });
      expect((await sys.call("POST", "/retention/policy", { token: a, body: { retention_days: 7 } })).status).toBe(200);
      const bView = await sys.call("GET", "/retention/policy", { token: b });
      expect(bView.body.policy).toMatchObject({ retention_days: 90, is_default: true });
      const forged = await sys.call("POST", "/retention/policy", { token: b, body: { tenant_id: "dist-iso-a", retention_days: 1 } });
      expect(forged.status).toBe(400);
      expect(forged.body.error).toMatchObject({ code: "invalid_field", field: "tenant_id" });
      expect((await sys.call("POST", "/retention/policy", { token: b, body: { retention_days: 365 } })).status).toBe(200);
      const aView = await sys.call("GET", "/retention/policy", { token: a });
      expect(aView.body.policy.retention_days).toBe(7);
    });

    it("maps a refusal inside the trace process (RBAC) to 403", async () => {
      const viewer = await signCallerToken({ tenant_id: "dist-rbac", roles: ["viewer"] });
      const res = await sys.call("POST", "/retention/policy", { token: viewer, body: { retention_days: 10 } });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("permission_denied");
    });
  });

  describe("a service port directly", () => {
    it.each(SERVICES)("%s answers /healthz, /readyz over HTTP/1.1 and gRPC health SERVING over HTTP/2", async (service) => {
      const { url } = sys.services[service];
      const healthz = await fetch(`${url}/healthz`);
      expect(healthz.status).toBe(200);
      expect(await healthz.json()).toEqual({ status: "ok" });
      const readyz = await fetch(`${url}/readyz`);
      expect(readyz.status).toBe(200);
      expect(await readyz.json()).toEqual({ status: "ok" });

      const health = createClient(Health, grpc(url));
      expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
      expect((await health.check({ service })).status).toBe(ServingStatus.SERVING);
      const other = service === "trace" ? "runtime" : "trace";
      await expect(health.check({ service: other })).rejects.toMatchObject({ code: Code.NotFound });
    });

    it("exposes Prometheus metrics of the RPCs it served", async () => {
      const token = await signCallerToken({ tenant_id: "dist-metrics" });
      expect((await sys.call("GET", "/retention/policy", { token })).status).toBe(200);
      const res = await fetch(`${sys.services.trace.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/rpc_server_duration_seconds_count\{[^}]*service="clasper\.trace\.v1\.TraceService"[^}]*method="GetRetentionPolicy"[^}]*code="ok"[^}]*\} [1-9]/);
      expect(text).toMatch(/service_name="clasper-trace"/);
    });

    it("refuses a Connect call without the signed internal context, or with a forged one", async () => {
      const trace = createClient(TraceService, h2Connect("trace"));
      const missing = await trace.getRetentionPolicy({}).then(() => undefined, (err: unknown) => err);
      expect(missing).toBeInstanceOf(ConnectError);
      expect((missing as ConnectError).code).toBe(Code.Unauthenticated);

      const forged = await contextFor("a-different-internal-secret-0123456789abcdef", "dist-a");
      await expect(trace.getRetentionPolicy({}, { headers: { [CONTEXT_HEADER]: forged } })).rejects.toMatchObject({ code: Code.Unauthenticated });
      // A caller JWT is not a context, even when it is perfectly valid at the gateway.
      const callerToken = await signCallerToken({ tenant_id: "dist-a" });
      await expect(trace.getRetentionPolicy({}, { headers: { [CONTEXT_HEADER]: callerToken } })).rejects.toMatchObject({ code: Code.Unauthenticated });
    });

    it("answers a call with a context signed by the shared secret, from the shared database", async () => {
      const token = await signCallerToken({ tenant_id: "dist-direct" });
      expect((await sys.call("POST", "/retention/policy", { token, body: { retention_days: 33 } })).status).toBe(200);
      const trace = createClient(TraceService, h2Connect("trace"));
      const answer = await trace.getRetentionPolicy({}, { headers: { [CONTEXT_HEADER]: await contextFor(sys.internalSecret, "dist-direct") } });
      expect(answer.policy).toMatchObject({ retentionDays: 33, isDefault: false });
    });
  });

  describe("SIGTERM", () => {
    it("drains an in-flight request, refuses new connections, and exits 0", async () => {
      const shutdownTimeoutMs = 2_000;
      const extra = await sys.startExtra("trace", "trace-drain", { CLASPER_SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) });
      const context = await contextFor(sys.internalSecret, "dist-drain");

      // 1. A slow upload: headers and half the body of a Connect JSON call over HTTP/1.1.
      let slowRequest!: http.ClientRequest;
      const slow = new Promise<{ status: number; body: string }>((resolve, reject) => {
        slowRequest = http.request(`${extra.url}/clasper.trace.v1.TraceService/GetRetentionPolicy`, {
          method: "POST",
          headers: { "content-type": "application/json", "content-length": "2", [CONTEXT_HEADER]: context },
        }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode!, body }));
        });
        slowRequest.on("error", reject);
        slowRequest.write("{");
      });
      slow.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
      // 2. An open Health/Watch stream over HTTP/2 that never ends by itself.
      const watchAbort = new AbortController();
      try {
        const watch = createClient(Health, grpc(extra.url)).watch({ service: "" }, { signal: watchAbort.signal })[Symbol.asyncIterator]();
        expect((await watch.next()).value?.status).toBe(ServingStatus.SERVING);
        const watchEnded = watch.next().then(() => "ended", () => "failed");
        await new Promise((r) => setTimeout(r, 200)); // the slow request's headers have reached the server

        const signalledAt = Date.now();
        extra.proc.child.kill("SIGTERM");
        await extra.proc.waitForLog((l) => l.msg === "shutting down: draining in-flight requests", "drain log line", 5_000);
        // The line is written just before the listener closes, so allow the child a moment.
        expect(await waitUntilRefused(extra.port, 1_000)).toBe("ECONNREFUSED");
        expect(extra.proc.exitStatus()).toBeUndefined();

        slowRequest.end("}");
        const answer = await slow;
        expect(answer.status).toBe(200);
        expect(JSON.parse(answer.body)).toMatchObject({ policy: { retentionDays: 90, isDefault: true } });

        const exit = await extra.proc.exited;
        const elapsed = Date.now() - signalledAt;
        expect(exit).toEqual({ code: 0, signal: null });
        expect(extra.proc.logs.some((l) => l.msg === "shutdown complete")).toBe(true);
        // The open stream held the drain until the shutdown timeout, then was cut.
        expect(elapsed).toBeGreaterThanOrEqual(shutdownTimeoutMs - 100);
        expect(elapsed).toBeLessThan(shutdownTimeoutMs + 3_000);
        expect(await watchEnded).toBe("failed");
        expect(await tryConnect(extra.port)).toBe("ECONNREFUSED");
      } finally {
        watchAbort.abort();
        slowRequest.destroy();
      }
    });

    // Runs last: it stops the shared processes.
    it("a stopped service shows at the gateway; every process exits 0 on SIGTERM", async () => {
      const stopped = await sys.services.trace.proc.stop();
      expect(stopped).toEqual({ code: 0, signal: null });
      expect(sys.services.trace.proc.logs.some((l) => l.msg === "shutdown complete")).toBe(true);

      const health = await sys.call("GET", "/health");
      expect(health.status).toBe(503);
      expect(health.body.status).toBe("degraded");
      expect(health.body.components.trace.status).toBe("error");
      expect(health.body.components.governance).toEqual({ status: "ok" });
      const token = await signCallerToken({ tenant_id: "dist-a" });
      const unavailable = await sys.call("GET", "/retention/policy", { token });
      expect(unavailable.status).toBe(503);
      expect(unavailable.body).toEqual({ error: { code: "unavailable", message: "service unavailable" } });

      const rest = [sys.gateway, ...SERVICES.filter((s) => s !== "trace").map((s) => sys.services[s].proc)];
      const started = Date.now();
      const exits = await Promise.all(rest.map((p) => p.stop()));
      expect(exits).toEqual(rest.map(() => ({ code: 0, signal: null })));
      for (const p of rest) expect(p.logs.some((l) => l.msg === "shutdown complete"), p.label).toBe(true);
      // Idle processes do not wait for the shutdown timeout (5 s here).
      expect(Date.now() - started).toBeLessThan(4_000);
    });
  });
});

describe.concurrent("distributed: start-up refusals", () => {
  it.each(["trace", "workspace"])("serve --service %s without DATABASE_URL fails fast naming it", async (service) => {
    const result = await runClasper(["serve", "--service", service], {
      NODE_ENV: "test",
      LOG_LEVEL: "info",
      CLASPER_HOST: "127.0.0.1",
      CLASPER_PORT: "0",
      CLASPER_INTERNAL_SECRET: INTERNAL_SECRET_FOR_REFUSALS,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`DATABASE_URL: is required to run the ${service} service on its own`);
    expect(result.stdout).not.toContain("service listening");
  });

  it("serve --service trace without CLASPER_INTERNAL_SECRET exits 2 naming it", async () => {
    const result = await runClasper(["serve", "--service", "trace"], { NODE_ENV: "test", CLASPER_PORT: "0", DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("CLASPER_INTERNAL_SECRET");
  });

  it("the stateless runtime service starts without a database and exits 0 on SIGTERM", async () => {
    const proc = spawnClasper("runtime-alone", ["serve", "--service", "runtime"], {
      NODE_ENV: "test",
      LOG_LEVEL: "info",
      CLASPER_HOST: "127.0.0.1",
      CLASPER_PORT: "0",
      CLASPER_INTERNAL_SECRET: INTERNAL_SECRET_FOR_REFUSALS,
    });
    try {
      const line = await proc.waitForLog((l) => l.msg === "service listening", '"service listening" log line');
      expect(line.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${line.url as string}/readyz`)).status).toBe(200);
      expect(await proc.stop()).toEqual({ code: 0, signal: null });
      expect(proc.logs.map((l) => l.msg)).toContain("shutdown complete");
    } finally {
      await proc.stop();
    }
  });

  it("serve --service gateway without CLASPER_TRACE_URL exits 2 naming it", async () => {
    const { CLASPER_TRACE_URL: _omitted, ...others } = PEER_URLS;
    const result = await runClasper(["serve", "--service", "gateway"], {
      NODE_ENV: "test",
      CLASPER_PORT: "0",
      CLASPER_INTERNAL_SECRET: INTERNAL_SECRET_FOR_REFUSALS,
      CLASPER_AUTH_JWT_SECRET: INTERNAL_SECRET_FOR_REFUSALS,
      ...others,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("CLASPER_TRACE_URL: is required for a standalone gateway");
    expect(result.stderr).not.toContain("CLASPER_RUNTIME_URL");
  });
});
