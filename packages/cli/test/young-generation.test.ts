import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import { hasSemiSpaceSize, INGEST_SEMI_SPACE_MIB, servesIngest } from "../src/young-generation.js";
import { freePorts, runClasper, spawnClasper, tryConnect, type ClasperProcess } from "./support/processes.js";

/** Live child processes of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return Number(readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]!.split(" ")[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function environmentOf(pid: number): Record<string, string> {
  const pairs = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
  return Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const SIZE = `--max-semi-space-size=${INGEST_SEMI_SPACE_MIB}`;

describe("young generation of the trace service", () => {
  it("relaunches only the process that serves span ingest", () => {
    expect(servesIngest(["serve", "--service", "trace"])).toBe(true);
    expect(servesIngest(["serve", "--service=trace"])).toBe(true);
    for (const args of [["serve"], ["serve", "--service", "gateway"], ["migrate"], ["serve", "--service"], ["init", "--service", "trace"]]) expect(servesIngest(args)).toBe(false);
  });

  it("recognises a size given on the command line or in NODE_OPTIONS", () => {
    expect(hasSemiSpaceSize([], undefined)).toBe(false);
    expect(hasSemiSpaceSize(["--max-old-space-size=512"], "--max-semi-space-sizes")).toBe(false);
    expect(hasSemiSpaceSize(["--max-semi-space-size=32"], undefined)).toBe(true);
    expect(hasSemiSpaceSize([], "--enable-source-maps  --max-semi-space-size=8")).toBe(true);
    expect(hasSemiSpaceSize([], "--max-semi-space-size 8")).toBe(true);
  });

  it("answers for the relaunched service: its refusal and exit code come through", async () => {
    const result = await runClasper(["serve", "--service", "trace"], { LOG_LEVEL: "silent", CLASPER_INTERNAL_SECRET: "young-generation-secret-0123456789abcdef" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("DATABASE_URL");
  });
});

const onPostgres = testBackendFromEnv() === "postgres";

// `serve --service trace` needs PostgreSQL (embedded PGlite serves one process only).
describe.skipIf(!onPostgres)("clasper serve --service trace (PostgreSQL)", () => {
  let database: FreshDatabase;
  const running: ClasperProcess[] = [];
  const SECRET = "young-generation-secret-0123456789abcdef";

  const start = async (env: Record<string, string> = {}) => {
    const [port] = (await freePorts(1)) as [number];
    const proc = spawnClasper("trace", ["serve", "--service", "trace"], {
      LOG_LEVEL: "info",
      CLASPER_HOST: "127.0.0.1",
      CLASPER_PORT: String(port),
      CLASPER_INTERNAL_SECRET: SECRET,
      DATABASE_URL: database.url!,
      ...env,
    });
    running.push(proc);
    await proc.waitForLog((line) => line.msg === "service listening", "trace service listening");
    return { proc, port };
  };

  beforeAll(async () => {
    database = await freshDatabase("clasper");
  });
  afterAll(async () => {
    for (const proc of running) await proc.stop();
    await database?.drop();
  });

  it("serves from a child started with the young-generation size, and drains it on SIGTERM", async () => {
    const { proc, port } = await start();
    const [child] = childrenOf(proc.child.pid!);
    expect(child).toBeDefined();
    expect(environmentOf(child!)["NODE_OPTIONS"]).toContain(SIZE);
    expect(await proc.stop()).toEqual({ code: 0, signal: null });
    expect(proc.logs.some((line) => line.msg === "shutdown complete")).toBe(true);
    await until(() => !alive(child!), "the child to exit");
    expect(await tryConnect(port)).toBe("ECONNREFUSED");
  });

  it("stops the child when the process that started it is killed outright", async () => {
    const { proc, port } = await start();
    const [child] = childrenOf(proc.child.pid!);
    proc.child.kill("SIGKILL");
    await until(() => !alive(child!), "the orphaned child to stop");
    expect(await tryConnect(port)).toBe("ECONNREFUSED");
  });

  it("runs in place when NODE_OPTIONS already sizes the young generation (as the Helm chart does)", async () => {
    const { proc } = await start({ NODE_OPTIONS: "--max-semi-space-size=32" });
    expect(childrenOf(proc.child.pid!)).toEqual([]);
    expect(await proc.stop()).toEqual({ code: 0, signal: null });
  });
});
