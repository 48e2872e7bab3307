import { randomBytes } from "node:crypto";
import { ConfigError, parseConfig } from "@clasper/core";
import { createContextSigner } from "@clasper/auth";
import { createLogger, createMetrics, startTelemetry } from "@clasper/telemetry";
import {
  clientInterceptors,
  listen,
  peerUrlVariable,
  remoteTransport,
  SERVICE_NAMES,
  type DualHandler,
  type Env,
  type ServiceName,
} from "@clasper/service-kit";
import type { Transport } from "@connectrpc/connect";
import { configureCallerAuth } from "./auth-setup.js";
import { gatewayConfigShape } from "./config.js";
import { createGateway } from "./gateway.js";

export const CLASPER_VERSION = "0.1.0";

/**
 * `clasper serve --service gateway`: the REST front end alone, reaching the five services over
 * HTTP/2 at CLASPER_<NAME>_URL.
 */
export async function runGateway(env: Env = process.env): Promise<{ url: string; devToken: string | undefined; stop(): Promise<void> }> {
  const config = parseConfig(gatewayConfigShape, env);
  const missing = SERVICE_NAMES.filter((name) => !env[peerUrlVariable(name)]);
  if (missing.length > 0) {
    throw new ConfigError(missing.map((name) => ({ variable: peerUrlVariable(name), reason: "is required for a standalone gateway" })));
  }
  if (!config.CLASPER_INTERNAL_SECRET) {
    throw new ConfigError([{ variable: "CLASPER_INTERNAL_SECRET", reason: "is required when services run as separate processes" }]);
  }
  const telemetry = startTelemetry({ serviceName: "clasper-gateway", env });
  const logger = createLogger({ serviceName: "clasper-gateway", level: config.LOG_LEVEL });
  const metrics = createMetrics({ serviceName: "clasper-gateway" });
  const auth = await configureCallerAuth(config);
  const outbound = clientInterceptors({ telemetry, forwardContext: false });
  const transports = Object.fromEntries(
    SERVICE_NAMES.map((name) => [name, remoteTransport(env[peerUrlVariable(name)]!, outbound)]),
  ) as Record<ServiceName, Transport>;
  const gateway = createGateway({
    transports,
    callerVerifier: auth.verifier,
    contextSigner: createContextSigner(config.CLASPER_INTERNAL_SECRET),
    logger,
    metrics,
    telemetry,
    maxBodyBytes: config.CLASPER_MAX_BODY_BYTES,
    requestTimeoutMs: config.CLASPER_REQUEST_TIMEOUT_MS,
    version: CLASPER_VERSION,
  });
  const listener = await listen(gateway.handler as DualHandler, { port: config.CLASPER_PORT, host: config.CLASPER_HOST });
  logger.info({ url: listener.url }, "gateway listening");
  return {
    url: listener.url,
    devToken: auth.devToken,
    async stop() {
      await listener.close(config.CLASPER_SHUTDOWN_TIMEOUT_MS);
      await telemetry.shutdown();
    },
  };
}

/** A random internal secret for one process, where signer and verifier share memory. */
export function ephemeralInternalSecret(): string {
  return randomBytes(48).toString("base64url");
}
