import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SECRET } from "./helpers.js";

// The bins run from dist/, which `pnpm test` builds first (tsc -b).
const dist = path.resolve(import.meta.dirname, "../dist");
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGTERM");
});

function run(script: string, env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number> } {
  const child = spawn(process.execPath, [path.join(dist, script)], { env: { PATH: process.env["PATH"] ?? "", ...env } });
  children.push(child);
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
  return { child, output: () => output, exited };
}

describe("bins", () => {
  it("mission-control-lite runs from the environment and passes clasper-conformance", async () => {
    const lite = run("mission-control-lite-bin.js", { AGENT_JWT_SECRET: SECRET, MC_LITE_PORT: "0" });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const match = /listening on (http:\/\/\S+)/.exec(lite.output());
        if (match) {
          clearInterval(timer);
          resolve(match[1]!);
        }
      }, 20);
      void lite.exited.then((code) => reject(new Error(`exited ${code}: ${lite.output()}`)));
    });
    const reportDir = mkdtempSync(path.join(tmpdir(), "conformance-"));
    const conformance = run("conformance-bin.js", { CONTROL_PLANE_URL: url, AGENT_JWT_SECRET: SECRET, CONFORMANCE_REPORT_DIR: reportDir });
    expect(await conformance.exited, conformance.output()).toBe(0);
    const report = JSON.parse(readFileSync(path.join(reportDir, "conformance.json"), "utf8")) as { failed: number; passed: number };
    expect(report).toMatchObject({ failed: 0, baseUrl: url });
    expect(report.passed).toBeGreaterThanOrEqual(6);
    expect(readFileSync(path.join(reportDir, "junit.xml"), "utf8")).toContain('<testsuite name="clasper-control-plane"');

    lite.child.kill("SIGTERM");
    expect(await lite.exited).toBe(0);
  });

  it("refuses to start without a usable AGENT_JWT_SECRET, naming the variable", async () => {
    const lite = run("mission-control-lite-bin.js", { AGENT_JWT_SECRET: "short", MC_LITE_PORT: "0" });
    expect(await lite.exited).toBe(1);
    expect(lite.output()).toContain("AGENT_JWT_SECRET: must be at least 32 bytes");
    const conformance = run("conformance-bin.js", { CONTROL_PLANE_URL: "http://127.0.0.1:1" });
    expect(await conformance.exited).toBe(1);
    expect(conformance.output()).toContain("AGENT_TOKEN");
  });

  it("clasper-conformance exits 1 when the backend fails checks", async () => {
    const reportDir = mkdtempSync(path.join(tmpdir(), "conformance-"));
    const conformance = run("conformance-bin.js", { CONTROL_PLANE_URL: "http://127.0.0.1:1", AGENT_TOKEN: "x", CONFORMANCE_REPORT_DIR: reportDir });
    expect(await conformance.exited).toBe(1);
    expect(conformance.output()).toContain("FAIL  capabilities endpoint");
  });
});
