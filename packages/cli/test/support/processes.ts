import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root and the built CLI the system tests start (build first: `npx tsc -b`). */
export const REPO_ROOT = path.resolve(fileURLToPath(new URL("../../../..", import.meta.url)));
export const CLI_BIN = path.join(REPO_ROOT, "packages/cli/dist/bin.js");

export type LogLine = Record<string, unknown>;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A `clasper` child process whose stdout (pino JSON lines) and stderr are collected. */
export interface ClasperProcess {
  readonly label: string;
  readonly child: ChildProcess;
  /** Every stdout line that parsed as a JSON object, in order. */
  readonly logs: LogLine[];
  stdout(): string;
  stderr(): string;
  /** Resolves with the first log line (already seen or still to come) the predicate accepts. */
  waitForLog(predicate: (line: LogLine) => boolean, description: string, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the first match of `pattern` against the whole stdout so far or later. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Settles when the process has exited and its output is fully read. */
  readonly exited: Promise<ExitStatus>;
  /** undefined while it runs. */
  exitStatus(): ExitStatus | undefined;
  /** SIGTERM, SIGKILL after `graceMs`; resolves with how it exited. Safe to call twice or after exit. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

/** Children still running; killed hard if the test worker exits without stopping them. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts `node packages/cli/dist/bin.js <args>` with exactly `env` (plus PATH): nothing of the
 * test runner's environment (DATABASE_URL, NODE_ENV, OTEL_*) leaks into the child.
 */
export function spawnClasper(label: string, args: string[], env: Record<string, string>, options: { cwd?: string } = {}): ClasperProcess {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    cwd: options.cwd ?? tmpdir(),
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let out = "";
  let err = "";
  let partial = "";
  const logs: LogLine[] = [];
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((l) => l());
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith("{")) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    }
    notify();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    err += chunk;
  });
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("close", (code, signal) => {
      running.delete(child);
      status = { code, signal };
      notify();
      resolve(status);
    });
  });
  const describeOutput = () => `\n--- ${label} stdout ---\n${out.slice(-3000)}\n--- ${label} stderr ---\n${err.slice(-3000)}`;

  function waitFor<T>(find: () => T | undefined, description: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (status) {
          done();
          reject(new Error(`${label} exited (code ${status.code}, signal ${status.signal}) before ${description}${describeOutput()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${label}: no ${description} within ${timeoutMs} ms${describeOutput()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }

  return {
    label,
    child,
    logs,
    stdout: () => out,
    stderr: () => err,
    waitForLog: (predicate, description, timeoutMs = 20_000) => waitFor(() => logs.find(predicate), description, timeoutMs),
    waitForStdout: (pattern, timeoutMs = 20_000) => waitFor(() => out.match(pattern) ?? undefined, `stdout matching ${pattern}`, timeoutMs),
    exited,
    exitStatus: () => status,
    async stop(graceMs = 5_000) {
      if (status) return status;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Runs the CLI to completion (for start-up refusals); kills it if it outlives `timeoutMs`. The
 * guard is for a hung process, not a speed limit: a refusal loads the whole CLI first, and several
 * run at once on a loaded 2-core machine took more than 15 s.
 */
export async function runClasper(args: string[], env: Record<string, string>, timeoutMs = 50_000): Promise<ExitStatus & { stdout: string; stderr: string }> {
  const proc = spawnClasper(`clasper ${args.join(" ")}`, args, env);
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), timeoutMs);
  const result = await proc.exited;
  clearTimeout(timer);
  return { ...result, stdout: proc.stdout(), stderr: proc.stderr() };
}

/** `count` distinct free TCP ports on 127.0.0.1 (held together while chosen, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<net.Server>((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** Resolves with the error code of a TCP connect to the port ("ECONNREFUSED"), or "connected". */
export function tryConnect(port: number, host = "127.0.0.1"): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** `@connectrpc/connect-node` client transports (Connect and gRPC over HTTP/2). */
export async function loadConnectNode(): Promise<typeof import("@connectrpc/connect-node")> {
  return import("@connectrpc/connect-node");
}
