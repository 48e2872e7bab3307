// Shared pieces of the benchmarks: child processes that serve, and an autocannon run.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import autocannon from "autocannon";

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts a child process and resolves once `url` answers 200. */
export async function startChild(command, args, { env = {}, url, timeoutMs = 60_000 }) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited with ${child.exitCode}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    child,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** One autocannon run; returns requests/s and latency percentiles in ms. */
export async function load({ url, method = "GET", headers = {}, body, connections, duration }) {
  const result = await autocannon({ url, method, headers, body, connections, duration, pipelining: 1 });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${method} ${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  }
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, total: result.requests.total };
}

export function row(label, figures, baseline) {
  const ratio = baseline ? ` | ${(figures.rps / baseline.rps).toFixed(3)}× | ${(figures.p50 - baseline.p50).toFixed(2)} | ${(figures.p99 - baseline.p99).toFixed(2)}` : " | 1.000× | 0 | 0";
  return `| ${label} | ${figures.rps.toFixed(0)} | ${figures.p50.toFixed(2)} | ${figures.p99.toFixed(2)}${ratio} |`;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system) process `pid` has used so far, from /proc (Linux); undefined
 * elsewhere or once the process is gone. On a shared machine wall-clock figures swing with the
 * neighbours; CPU per unit of work much less, so A/B comparisons read it.
 */
export function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
