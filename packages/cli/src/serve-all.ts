import type { Transport } from "@connectrpc/connect";
import { parseConfig } from "@clasper/core";
import { createContextSigner, createContextVerifier } from "@clasper/auth";
import { createDatabase, migrateSchema, type Database } from "@clasper/db";
import { configureCallerAuth, createGateway, CLASPER_VERSION, ephemeralInternalSecret, gatewayConfigShape } from "@clasper/gateway";
import { createLogger, createMetrics, startTelemetry } from "@clasper/telemetry";
import {
  clientInterceptors,
  createHealthRegistry,
  createPeerClients,
  inMemoryTransport,
  lateBoundTransport,
  listen,
  serverInterceptors,
  SERVICE_DESCRIPTORS,
  SERVICE_NAMES,
  startSpanDelivery,
  type DualHandler,
  type Env,
  type ServiceName,
} from "@clasper/service-kit";
import { SERVICE_MODULES } from "./modules.js";

export interface RunningSystem {
  readonly url: string;
  readonly port: number;
  readonly devToken: string | undefined;
  readonly database: Database;
  stop(): Promise<void>;
}

/** Runs all migrations of every stateful service against one database. */
export async function migrateAll(db: Database): Promise<string[]> {
  const applied: string[] = [];
  for (const module of Object.values(SERVICE_MODULES)) {
    if (module.schema) applied.push(...(await migrateSchema(db, module.schema, module.migrations)).map((m) => `${module.schema}.${m}`));
  }
  return applied;
}

/**
 * `clasper serve`: the five services and the gateway in one process. Peers talk over in-memory
 * Connect transports that run the same interceptor stack (auth, validation, tracing) as the
 * network; storage is embedded PGlite under CLASPER_DATA_DIR unless DATABASE_URL is set.
 */
export async function serveAll(env: Env = process.env): Promise<RunningSystem> {
  const config = parseConfig(gatewayConfigShape, env);
  const telemetry = startTelemetry({ serviceName: "clasper", env });
  const logger = createLogger({ serviceName: "clasper", level: config.LOG_LEVEL });
  const metrics = createMetrics({ serviceName: "clasper" });
  const auth = await configureCallerAuth(config);
  const database = await createDatabase({ url: config.DATABASE_URL, dataDir: `${config.CLASPER_DATA_DIR}/pgdata`, poolMax: config.CLASPER_DB_POOL_MAX });
  await migrateAll(database);

  const internalSecret = config.CLASPER_INTERNAL_SECRET ?? ephemeralInternalSecret();
  const contextSigner = createContextSigner(internalSecret);
  const inbound = serverInterceptors({ telemetry, logger, metrics, contextVerifier: createContextVerifier(internalSecret), contextSigner });
  const transports: Partial<Record<ServiceName, Transport>> = {};
  const peers = createPeerClients((name) => lateBoundTransport(() => transports[name]!));
  // Execution spans of every service go to the trace service (flushed by telemetry.shutdown()).
  startSpanDelivery({ telemetry, peers, signer: contextSigner, metrics, logger });
  const health = (name: ServiceName) =>
    createHealthRegistry([name, SERVICE_DESCRIPTORS[name].typeName], async () => {
      if (SERVICE_MODULES[name].schema) await database.ping();
    });
  for (const name of SERVICE_NAMES) {
    const module = SERVICE_MODULES[name];
    const routes = module.build({ db: module.schema ? database : undefined, peers, logger: logger.child({ service: name }), env, telemetry });
    transports[name] = inMemoryTransport({
      routes,
      health: health(name),
      serverInterceptors: inbound,
      clientInterceptors: clientInterceptors({ telemetry, forwardContext: true }),
    });
  }
  const gateway = createGateway({
    transports: transports as Record<ServiceName, Transport>,
    callerVerifier: auth.verifier,
    contextSigner,
    logger,
    metrics,
    telemetry,
    maxBodyBytes: config.CLASPER_MAX_BODY_BYTES,
    requestTimeoutMs: config.CLASPER_REQUEST_TIMEOUT_MS,
    version: CLASPER_VERSION,
    database: { kind: database.kind, ping: () => database.ping() },
  });
  const listener = await listen(gateway.handler as DualHandler, { port: config.CLASPER_PORT, host: config.CLASPER_HOST });
  logger.info({ url: listener.url, database: database.kind }, "clasper listening");
  return {
    url: listener.url,
    port: listener.port,
    devToken: auth.devToken,
    database,
    async stop() {
      await listener.close(config.CLASPER_SHUTDOWN_TIMEOUT_MS);
      await telemetry.shutdown();
      await database.close();
    },
  };
}
