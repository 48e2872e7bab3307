import type http from "node:http";
import type { DescMethodServerStreaming, DescMethodUnary, Message } from "@bufbuild/protobuf";
import { createClient, createContextValues, type Transport } from "@connectrpc/connect";
import Router from "find-my-way";
import type { Logger } from "pino";
import { context as otelContext, defaultTextMapGetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { Health, HealthCheckResponse_ServingStatus } from "@clasper/proto";
import { AuthError, CONTEXT_HEADER, type CallerVerifier, type ContextSigner } from "@clasper/auth";
import { requestId as newRequestId } from "@clasper/core";
import type { Metrics, Telemetry } from "@clasper/telemetry";
import { HAND_OVER_MESSAGES, SERVICE_DESCRIPTORS, SERVICE_NAMES, type ServiceName } from "@clasper/service-kit";
import { bindRequest } from "./bind.js";
import { BodyError, readJsonBody } from "./body.js";
import { fromConnectError, restError, type RestErrorBody } from "./http-errors.js";
import { FieldError } from "./json-shape.js";
import { buildOpenApi } from "./openapi.js";
import { renderRestJson } from "./rest-json.js";
import { pathParamsFit, restRoutes, type RestRoute } from "./route-table.js";
import { writeSse } from "./sse.js";

export interface GatewayOptions {
  /** Transports to the five services (in-memory in one process, HTTP/2 when distributed). */
  readonly transports: Readonly<Record<ServiceName, Transport>>;
  readonly callerVerifier: CallerVerifier;
  readonly contextSigner: ContextSigner;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly telemetry: Telemetry;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly version: string;
  /** When this process owns the database (one process): its backend and a ping for /health. */
  readonly database?: { kind: "postgres" | "pglite"; ping(): Promise<void> };
}

type Req = http.IncomingMessage;
type Res = http.ServerResponse;

const SERVICE_OF_TYPENAME = new Map<string, ServiceName>(
  SERVICE_NAMES.map((name) => [SERVICE_DESCRIPTORS[name].typeName, name]),
);

function sendJson(res: Res, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

function sendJsonText(res: Res, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const payload = Buffer.from(text);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(payload.length),
    ...headers,
  });
  res.end(payload);
}

function sendError(res: Res, answer: { status: number; body: RestErrorBody }, headers?: Record<string, string>): void {
  sendJson(res, answer.status, answer.body, headers);
}

const VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * The REST/JSON front end: authenticates the caller, binds the request into the RPC message
 * from the google.api.http annotations, calls the owning service with a signed internal context,
 * and renders the answer (or error) as JSON. It holds no state of its own.
 */
export function createGateway(options: GatewayOptions) {
  const routes = restRoutes(SERVICE_NAMES.map((name) => SERVICE_DESCRIPTORS[name]));
  const openapi = buildOpenApi(routes, options.version);
  const router = Router({ ignoreTrailingSlash: true, caseSensitive: true });
  const tracer = options.telemetry.tracer;

  for (const route of routes) {
    router.on(route.verb, route.routerPath, () => undefined, route);
  }

  const healthClients = SERVICE_NAMES.map((name) => [name, createClient(Health, options.transports[name])] as const);

  async function health(res: Res): Promise<void> {
    const components: Record<string, { status: string; error?: string }> = { gateway: { status: "ok" } };
    await Promise.all(
      healthClients.map(async ([name, client]) => {
        try {
          const answer = await client.check({ service: "" }, { timeoutMs: 2_000 });
          components[name] = { status: answer.status === HealthCheckResponse_ServingStatus.SERVING ? "ok" : "error" };
        } catch (err) {
          components[name] = { status: "error", error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    let database: { status: string; kind?: string; error?: string };
    if (options.database) {
      database = await options.database.ping().then(
        () => ({ status: "ok", kind: options.database!.kind }),
        (err: unknown) => ({ status: "error", kind: options.database!.kind, error: err instanceof Error ? err.message : String(err) }),
      );
    } else {
      // Distributed: the gateway has no database of its own; a stateful service answers SERVING
      // only while its database does, so report what the reachable ones say.
      const reachable = (["trace", "governance", "registry", "workspace"] as const).map((n) => components[n]).filter((c) => c && !c.error);
      database = { status: reachable.length === 0 ? "unknown" : reachable.every((c) => c!.status === "ok") ? "ok" : "error" };
    }
    const ok = Object.values(components).every((c) => c.status === "ok");
    sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "degraded", version: options.version, components, database });
  }

  async function callRoute(req: Req, res: Res, route: RestRoute, params: Record<string, string | undefined>, query: URLSearchParams, requestId: string): Promise<number> {
    const endpoint = `${route.verb} ${route.template}`;
    let principal;
    try {
      principal = await options.callerVerifier.verify(
        req.headers.authorization,
        typeof req.headers["x-agent-daemon-key"] === "string" ? req.headers["x-agent-daemon-key"] : undefined,
      );
    } catch (err) {
      if (err instanceof AuthError) {
        sendError(res, restError(err.status, err.code, err.message), { "www-authenticate": "Bearer" });
        return err.status;
      }
      throw err;
    }

    let message: Message;
    try {
      const body = route.body === "" ? undefined : await readJsonBody(req, options.maxBodyBytes);
      message = bindRequest(route, params, query, body);
    } catch (err) {
      if (err instanceof BodyError) {
        sendError(res, restError(err.status, err.code, err.message));
        return err.status;
      }
      if (err instanceof FieldError) {
        sendError(res, restError(400, "invalid_field", err.message, err.field));
        return 400;
      }
      throw err;
    }

    const serviceName = SERVICE_OF_TYPENAME.get(route.service.typeName)!;
    const transport = options.transports[serviceName];
    const token = await options.contextSigner.sign({ principal, requestId });
    const headers = { [CONTEXT_HEADER]: token, "x-request-id": requestId };
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
    });

    const method = route.method;
    // The request is this call's alone, and an answer is rendered at once and dropped.
    const handOver = createContextValues().set(HAND_OVER_MESSAGES, true);
    try {
      if (method.methodKind === "server_streaming") {
        const answer = await transport.stream(method as DescMethodServerStreaming, abort.signal, undefined, headers, (async function* () {
          yield message;
        })() as never, handOver);
        await writeSse(res, answer.message as AsyncIterable<Message>, route.method.output);
        return 200;
      }
      if (method.methodKind !== "unary") {
        sendError(res, restError(501, "not_implemented", `${endpoint} is not available over REST`));
        return 501;
      }
      const answer = await transport.unary(method as DescMethodUnary, abort.signal, options.requestTimeoutMs, headers, message as never, handOver);
      sendJsonText(res, route.successStatus, renderRestJson(route.method.output, answer.message as Message));
      return route.successStatus;
    } catch (err) {
      const answer = fromConnectError(err, endpoint);
      if (answer.status >= 500 && answer.status !== 501 && answer.status !== 503) {
        options.logger.error({ err, endpoint, request_id: requestId }, "request failed");
      }
      sendError(res, answer);
      return answer.status;
    }
  }

  async function handle(req: Req, res: Res): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? "/", "http://gateway");
    const verb = (req.method ?? "GET").toUpperCase();
    const requestId = typeof req.headers["x-request-id"] === "string" && req.headers["x-request-id"].length <= 128
      ? req.headers["x-request-id"]
      : newRequestId();
    res.setHeader("x-request-id", requestId);
    let routeLabel = "unmatched";
    let status = 500;
    // Continue the caller's trace when it sends W3C trace context, so a backend's spans and
    // Clasper's join up in one trace.
    const parent = options.telemetry.propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const span = tracer.startSpan(`${verb} ${url.pathname}`, { kind: SpanKind.SERVER, attributes: { "http.request.method": verb, "url.path": url.pathname } }, parent);
    try {
      await otelContext.with(trace.setSpan(parent, span), async () => {
        if (verb === "GET" && url.pathname === "/health") {
          routeLabel = "/health";
          await health(res);
          status = res.statusCode;
          return;
        }
        if (verb === "GET" && url.pathname === "/openapi.json") {
          routeLabel = "/openapi.json";
          sendJson(res, 200, openapi);
          status = 200;
          return;
        }
        if (verb === "GET" && url.pathname === "/metrics") {
          routeLabel = "/metrics";
          res.writeHead(200, { "content-type": options.metrics.contentType });
          res.end(await options.metrics.metricsText());
          status = 200;
          return;
        }
        if (verb === "GET" && (url.pathname === "/healthz" || url.pathname === "/readyz")) {
          routeLabel = url.pathname;
          sendJson(res, 200, { status: "ok" });
          status = 200;
          return;
        }
        if (verb === "GET" && url.pathname === "/api/version") {
          routeLabel = "/api/version";
          sendJson(res, 200, { name: "Clasper", version: options.version, contract_version: "1.1.0" });
          status = 200;
          return;
        }
        const known = (VERBS as readonly string[]).includes(verb);
        let found = known ? router.find(verb as (typeof VERBS)[number], url.pathname) : null;
        let allowed: string[] = [];
        if (!found || !pathParamsFit(found.store as RestRoute, found.params)) {
          const matches = VERBS.map((v) => [v, router.find(v, url.pathname)] as const).filter(([, match]) => match !== null);
          const fitting = matches.filter(([, match]) => pathParamsFit(match!.store as RestRoute, match!.params));
          // A path whose parameter cannot be a value of its field (`/traces/diff` for `/traces/{trace_id}`)
          // belongs to the routes it fits, when there are any: another verb on it is a 405.
          allowed = (fitting.length > 0 ? fitting : matches).map(([v]) => v);
          if (!allowed.includes(verb)) found = null;
        }
        if (!found) {
          if (allowed.length > 0) {
            status = 405;
            sendError(res, restError(405, "method_not_allowed", `${verb} is not allowed on ${url.pathname}`), { allow: allowed.join(", ") });
          } else {
            status = 404;
            sendError(res, restError(404, "route_not_found", `no route for ${verb} ${url.pathname}`));
          }
          return;
        }
        const route = found.store as RestRoute;
        routeLabel = route.template;
        span.updateName(`${verb} ${route.template}`);
        status = await callRoute(req, res, route, found.params, url.searchParams, requestId);
      });
    } catch (err) {
      options.logger.error({ err, request_id: requestId }, "unhandled gateway error");
      status = 500;
      sendError(res, restError(500, "internal", "internal error"));
    } finally {
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      options.metrics.httpServerDuration.observe({ method: verb, route: routeLabel, status_code: String(status) }, seconds);
      if (options.logger.isLevelEnabled("info")) {
        options.logger.info({ method: verb, route: routeLabel, status, duration_ms: Math.round(seconds * 1e6) / 1e3, request_id: requestId }, "http request");
      }
    }
  }

  return {
    routes,
    openapi,
    handler(req: Req, res: Res): void {
      void handle(req, res);
    },
  };
}
