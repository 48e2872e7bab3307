import { spawn } from "node:child_process";

/**
 * MiB per semi-space of V8's young generation for a process that serves span ingest (the trace
 * service): batches of hundreds of spans stay alive across the database round trips, and with the
 * default 16 MiB every scavenge copies the batches in flight (docs/PERFORMANCE.md, "Span ingest").
 */
export const INGEST_SEMI_SPACE_MIB = 64;

const FLAG = "--max-semi-space-size";

/** Whether the command line (after `clasper`) is `serve --service trace`, the process that ingests spans. */
export function servesIngest(args: readonly string[]): boolean {
  if (args[0] !== "serve") return false;
  const at = args.indexOf("--service");
  return (at >= 0 && args[at + 1] === "trace") || args.includes("--service=trace");
}

/** Whether this process was started with a young-generation size, on its command line or in NODE_OPTIONS. */
export function hasSemiSpaceSize(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some((arg) => arg === FLAG || arg.startsWith(`${FLAG}=`));
}

/**
 * V8 sizes the young generation when the process starts; nothing can change it afterwards. So a
 * process started without a size runs the same command again in a child Node process with
 * `--max-semi-space-size=<mib>` added to NODE_OPTIONS, and stands in for it: signals go to the
 * child, the child's exit is this process's exit, and the child stops (as on SIGTERM) when this
 * process dies. Returns false, doing nothing, when the process already has a size (the Helm chart
 * sets NODE_OPTIONS); true when the child now runs the command in its place.
 */
export function relaunchWithSemiSpace(mib: number): boolean {
  if (hasSemiSpaceSize(process.execArgv, process.env["NODE_OPTIONS"])) return false;
  const nodeOptions = [process.env["NODE_OPTIONS"], `${FLAG}=${mib}`].filter(Boolean).join(" ");
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
    // Its own process group, so a terminal's Ctrl-C reaches it once, through us (on Windows that
    // would open a console window of its own); the IPC channel tells it when we are gone, however
    // we went.
    detached: process.platform !== "win32",
    stdio: ["inherit", "inherit", "inherit", "ipc"],
  });
  const forwarded = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
  for (const signal of forwarded) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // End the way the child ended: the same signal, with its default action.
    for (const s of forwarded) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  });
  child.on("error", (err) => {
    process.stderr.write(`clasper: could not start ${process.execPath}: ${err.message}\n`);
    process.exit(1);
  });
  return true;
}

/** In the relaunched child: stop as on SIGTERM when the parent is gone. */
export function followParent(): void {
  if (!process.channel) return;
  // The channel must not keep the process alive on its own.
  process.channel.unref();
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}
