import { z } from "zod";
import { commonConfigShape, ConfigError, parseConfig, port } from "@clasper/core";
import { createContextSigner, createContextVerifier } from "@clasper/auth";
import { createDatabase, migrateSchema, type Database } from "@clasper/db";
import { createLogger, createMetrics, startTelemetry } from "@clasper/telemetry";
import { createHealthRegistry } from "./health.js";
import { clientInterceptors, serverInterceptors } from "./interceptors.js";
import type { Env, ServiceModule } from "./module.js";
import { peerUrlVariable, SERVICE_NAMES, type ServiceName } from "./names.js";
import { createPeerClients, remoteTransport, SERVICE_DESCRIPTORS } from "./peers.js";
import { serveConnect } from "./serve.js";
import { startSpanDelivery } from "./span-delivery.js";

const serviceProcessShape = {
  ...commonConfigShape,
  CLASPER_PORT: port(8080),
  CLASPER_INTERNAL_SECRET: z.string({ required_error: "is required when services run as separate processes" }).min(32, "must be at least 32 bytes"),
};

/** Opens the database of a stateful service and brings its schema up to date. */
export async function openServiceDatabase(module: ServiceModule, options: { url: string | undefined; dataDir: string; poolMax: number }): Promise<Database | undefined> {
  if (!module.schema) return undefined;
  const db = await createDatabase({ url: options.url, dataDir: `${options.dataDir}/pgdata`, poolMax: options.poolMax });
  await migrateSchema(db, module.schema, module.migrations);
  return db;
}

/**
 * `clasper serve --service <name>` and services/<name>/src/main.ts: one service in its own
 * process, peers over HTTP/2 at CLASPER_<NAME>_URL; SIGTERM stops accepting, drains, exits 0.
 */
export async function runService(module: ServiceModule, env: Env = process.env): Promise<{ url: string; stop(): Promise<void> }> {
  const config = parseConfig(serviceProcessShape, env);
  const peerUrls: Partial<Record<ServiceName, string>> = {};
  for (const name of SERVICE_NAMES) {
    const value = env[peerUrlVariable(name)];
    if (value) peerUrls[name] = value;
  }
  if (module.schema && !config.DATABASE_URL) {
    // Embedded PGlite is single-process; separate processes need a shared PostgreSQL.
    throw new ConfigError([{ variable: "DATABASE_URL", reason: `is required to run the ${module.name} service on its own (embedded PGlite serves one process only)` }]);
  }
  const telemetry = startTelemetry({ serviceName: `clasper-${module.name}`, env });
  const logger = createLogger({ serviceName: `clasper-${module.name}`, level: config.LOG_LEVEL });
  const metrics = createMetrics({ serviceName: `clasper-${module.name}` });
  const db = await openServiceDatabase(module, { url: config.DATABASE_URL, dataDir: config.CLASPER_DATA_DIR, poolMax: config.CLASPER_DB_POOL_MAX });
  const outbound = clientInterceptors({ telemetry, forwardContext: true });
  const peers = createPeerClients((name) => {
    const url = peerUrls[name];
    if (!url) {
      return {
        unary: () => Promise.reject(new Error(`${peerUrlVariable(name)} is not set; ${module.name} cannot reach ${name}`)),
        stream: () => Promise.reject(new Error(`${peerUrlVariable(name)} is not set; ${module.name} cannot reach ${name}`)),
      };
    }
    return remoteTransport(url, outbound);
  });
  const contextSigner = createContextSigner(config.CLASPER_INTERNAL_SECRET);
  if (peerUrls.trace) startSpanDelivery({ telemetry, peers, signer: contextSigner, metrics, logger });
  else logger.warn("CLASPER_TRACE_URL is not set; execution spans are not delivered to the trace service");
  const routes = module.build({ db, peers, logger, env, telemetry });
  const health = createHealthRegistry([module.name, SERVICE_DESCRIPTORS[module.name].typeName], async () => {
    if (db) await db.ping();
  });
  const listener = await serveConnect({
    routes,
    interceptors: serverInterceptors({
      telemetry,
      logger,
      metrics,
      contextVerifier: createContextVerifier(config.CLASPER_INTERNAL_SECRET),
      contextSigner,
    }),
    health,
    metrics,
    port: config.CLASPER_PORT,
    host: config.CLASPER_HOST,
  });
  logger.info({ url: listener.url, service: module.name }, "service listening");
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await listener.close(config.CLASPER_SHUTDOWN_TIMEOUT_MS);
      await telemetry.shutdown();
      await db?.close();
    })());
  return { url: listener.url, stop };
}
