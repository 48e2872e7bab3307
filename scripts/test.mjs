#!/usr/bin/env node
// The README's test command (`pnpm test`): builds, then runs the whole suite against real
// PostgreSQL and again against embedded PGlite. When no PostgreSQL server answers at
// TEST_DATABASE_URL it says so and runs PGlite alone. Extra arguments go to vitest.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const url = process.env.TEST_DATABASE_URL ?? "postgres://clasper:clasper@127.0.0.1:5432/clasper_test";
const extra = process.argv.slice(2);

function run(cmd, args, env = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  return result.status ?? 1;
}

function reachable(target) {
  const { hostname, port } = new URL(target);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 5432) });
    const done = (ok, reason) => {
      socket.destroy();
      resolve({ ok, reason });
    };
    socket.setTimeout(2000, () => done(false, "timed out"));
    socket.once("connect", () => done(true));
    socket.once("error", (err) => done(false, err.code ?? err.message));
  });
}

if (run("npx", ["tsc", "-b"]) !== 0) {
  console.error("build failed");
  process.exit(1);
}

const backends = [];
const pg = await reachable(url);
if (pg.ok) backends.push("postgres");
else console.log(`\nPostgreSQL is not reachable at ${url} (${pg.reason}): running the suite on PGlite only.\n`);
backends.push("pglite");

const totals = { passed: 0, failed: 0, skipped: 0 };
let exitCode = 0;
const outDir = mkdtempSync(path.join(tmpdir(), "clasper-test-"));
for (const backend of backends) {
  console.log(`\n=== Test suite on ${backend} ===\n`);
  const report = path.join(outDir, `${backend}.json`);
  const code = run("npx", ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...extra], {
    CLASPER_TEST_DB: backend,
    TEST_DATABASE_URL: url,
  });
  if (code !== 0) exitCode = code;
  try {
    const json = JSON.parse(readFileSync(report, "utf8"));
    totals.passed += json.numPassedTests;
    totals.failed += json.numFailedTests;
    totals.skipped += json.numPendingTests + json.numTodoTests;
    console.log(`${backend}: ${json.numPassedTests} passed, ${json.numFailedTests} failed, ${json.numPendingTests + json.numTodoTests} skipped`);
  } catch {
    console.log(`${backend}: no test report was written`);
    exitCode ||= 1;
  }
}
console.log(`\nbackends: ${backends.join(", ")}`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(exitCode);
