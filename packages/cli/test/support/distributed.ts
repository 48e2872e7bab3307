import { randomBytes } from "node:crypto";
import { freshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { callGateway, TEST_SECRET } from "./system.js";
import { freePorts, spawnClasper, type ClasperProcess } from "./processes.js";

export const SERVICES = ["trace", "governance", "registry", "workspace", "runtime"] as const;
export type Service = (typeof SERVICES)[number];

export interface ServiceProcess {
  readonly url: string;
  readonly port: number;
  readonly proc: ClasperProcess;
}

export interface DistributedSystem {
  readonly gatewayUrl: string;
  readonly gateway: ClasperProcess;
  readonly services: Readonly<Record<Service, ServiceProcess>>;
  /** CLASPER_INTERNAL_SECRET shared by the gateway and every service. */
  readonly internalSecret: string;
  readonly databaseUrl: string;
  /** The environment every service process got (without CLASPER_PORT), for starting one more. */
  readonly serviceEnv: Readonly<Record<string, string>>;
  call: (method: string, route: string, options?: Parameters<typeof callGateway>[3]) => ReturnType<typeof callGateway>;
  /** Starts one more service process (port chosen here) sharing the database and secret. */
  startExtra(service: Service, label: string, env?: Record<string, string>): Promise<ServiceProcess>;
  /** SIGTERM to every process still running (SIGKILL after 5 s), waits for each, drops the database. */
  stop(): Promise<void>;
}

const isListening = (msg: string) => (line: Record<string, unknown>) => line.msg === msg && typeof line.url === "string";

async function startService(service: Service, label: string, env: Record<string, string>, all: ClasperProcess[]): Promise<ServiceProcess> {
  const [port] = await freePorts(1);
  return startServiceOn(service, label, port!, env, all);
}

async function startServiceOn(service: Service, label: string, port: number, env: Record<string, string>, all: ClasperProcess[]): Promise<ServiceProcess> {
  const proc = spawnClasper(label, ["serve", "--service", service], { ...env, CLASPER_PORT: String(port) });
  all.push(proc);
  const line = await proc.waitForLog(isListening("service listening"), '"service listening" log line');
  return { url: line.url as string, port, proc };
}

/**
 * The five services and the gateway, each `clasper serve --service <name>` in its own child
 * process, on one fresh PostgreSQL database copied from the migrated template. Ports are chosen
 * up front so every service can be given every peer's CLASPER_<NAME>_URL.
 */
export async function startDistributed(): Promise<DistributedSystem> {
  const database: FreshDatabase = await freshDatabase("clasper");
  const all: ClasperProcess[] = [];
  const stop = async () => {
    await Promise.all(all.map((p) => p.stop()));
    await database.drop();
  };
  try {
    const ports = await freePorts(SERVICES.length + 1);
    const internalSecret = randomBytes(36).toString("base64url");
    const peerUrls = Object.fromEntries(SERVICES.map((name, i) => [`CLASPER_${name.toUpperCase()}_URL`, `http://127.0.0.1:${ports[i]}`]));
    const serviceEnv: Record<string, string> = {
      NODE_ENV: "test",
      LOG_LEVEL: "info",
      CLASPER_HOST: "127.0.0.1",
      CLASPER_INTERNAL_SECRET: internalSecret,
      DATABASE_URL: database.url!,
      CLASPER_DB_POOL_MAX: "4",
      CLASPER_SHUTDOWN_TIMEOUT_MS: "5000",
      ...peerUrls,
    };
    const started = await Promise.all(SERVICES.map((name, i) => startServiceOn(name, name, ports[i]!, serviceEnv, all)));
    const services = Object.fromEntries(SERVICES.map((name, i) => [name, started[i]!])) as Record<Service, ServiceProcess>;
    const gatewayPort = ports[SERVICES.length]!;
    const gateway = spawnClasper("gateway", ["serve", "--service", "gateway"], {
      NODE_ENV: "test",
      LOG_LEVEL: "info",
      CLASPER_HOST: "127.0.0.1",
      CLASPER_PORT: String(gatewayPort),
      CLASPER_INTERNAL_SECRET: internalSecret,
      CLASPER_AUTH_JWT_SECRET: TEST_SECRET,
      CLASPER_SHUTDOWN_TIMEOUT_MS: "5000",
      ...peerUrls,
    });
    all.push(gateway);
    const gatewayUrl = (await gateway.waitForLog(isListening("gateway listening"), '"gateway listening" log line')).url as string;
    return {
      gatewayUrl,
      gateway,
      services,
      internalSecret,
      databaseUrl: database.url!,
      serviceEnv,
      call: (method, route, options) => callGateway(gatewayUrl, method, route, options),
      startExtra: (service, label, env = {}) => startService(service, label, { ...serviceEnv, ...env }, all),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
