import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll } from "vitest";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import { serveAll, type RunningSystem } from "../../src/index.js";

export const TEST_SECRET = "system-test-secret-that-is-long-enough-0123456789";

export interface TestSystem {
  readonly url: string;
  readonly system: RunningSystem;
  /** A caller token for a tenant with the given roles (HS256 with TEST_SECRET unless told). */
  token(claims?: Record<string, unknown>, options?: { secret?: string; expiresIn?: string | number; alg?: string }): Promise<string>;
  /** fetch against the gateway with a JSON body and optional bearer token. */
  call(method: string, route: string, options?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

/** Signs a caller JWT the way a SaaS backend would. */
export async function signCallerToken(
  claims: Record<string, unknown> = {},
  options: { secret?: string; expiresIn?: string | number; alg?: string } = {},
): Promise<string> {
  const jwt = new SignJWT({ tenant_id: "tenant-a", user_id: "user-1", roles: ["admin"], ...claims })
    .setProtectedHeader({ alg: options.alg ?? "HS256" })
    .setIssuedAt();
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn);
  else jwt.setExpirationTime("5m");
  return jwt.sign(new TextEncoder().encode(options.secret ?? TEST_SECRET));
}

export async function callGateway(
  baseUrl: string,
  method: string,
  route: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(`${baseUrl}${route}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    // leave as text (SSE, metrics)
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/**
 * startOneProcess for the calling test file: started in `beforeAll`, stopped in `afterAll`. Returns
 * a stand-in that forwards to the running system once started.
 */
export function useOneProcess(env: Record<string, string> = {}): TestSystem {
  let sys: TestSystem | undefined;
  beforeAll(async () => {
    sys = await startOneProcess(env);
  });
  afterAll(async () => {
    await sys?.stop();
  });
  const started = (): TestSystem => {
    if (!sys) throw new Error("the one-process system is used before beforeAll started it");
    return sys;
  };
  return {
    get url() {
      return started().url;
    },
    get system() {
      return started().system;
    },
    token: (claims, options) => started().token(claims, options),
    call: (method, route, options) => started().call(method, route, options),
    stop: () => started().stop(),
  };
}

/**
 * The whole system in this process on the backend the run selects: a fresh PostgreSQL database
 * copied from the migrated template, or an embedded PGlite in a temporary directory.
 */
export async function startOneProcess(env: Record<string, string> = {}): Promise<TestSystem> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "clasper-system-"));
  let database: FreshDatabase | undefined;
  if (testBackendFromEnv() === "postgres") database = await freshDatabase("clasper");
  const system = await serveAll({
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    CLASPER_HOST: "127.0.0.1",
    CLASPER_PORT: "0",
    CLASPER_DATA_DIR: dataDir,
    CLASPER_AUTH_JWT_SECRET: TEST_SECRET,
    ...(database?.url ? { DATABASE_URL: database.url } : {}),
    ...env,
  });
  return {
    url: system.url,
    system,
    token: (claims, options) => signCallerToken(claims, options),
    call: (method, route, options) => callGateway(system.url, method, route, options),
    async stop() {
      await system.stop();
      if (database) await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
