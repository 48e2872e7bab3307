import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runClasper } from "./support/processes.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "clasper-cmd-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// On the embedded database (a fresh data directory); PostgreSQL migrations run through the same
// migrateAll in every PostgreSQL test run's template setup.
describe("clasper migrate", () => {
  it("applies every service's migrations once, then reports the database up to date", async () => {
    const env = { CLASPER_DATA_DIR: path.join(dir, "data"), LOG_LEVEL: "silent" };
    const first = await runClasper(["migrate"], env, 60_000);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("trace.20261124000000_retention_policies");
    const second = await runClasper(["migrate"], env, 60_000);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("Database is up to date.");
  });

  it("refuses a malformed DATABASE_URL naming it", async () => {
    const result = await runClasper(["migrate"], { DATABASE_URL: "not a url" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("DATABASE_URL");
  });
});

describe("clasper init", () => {
  it("copies the template workspace and keeps existing files unless forced", async () => {
    const target = path.join(dir, "ws");
    const first = await runClasper(["init", target], {});
    expect(first.code).toBe(0);
    const files = (await readdir(target)).sort();
    expect(files).toEqual(expect.arrayContaining(["AGENTS.md", "HEARTBEAT.md", "IDENTITY.md", "SOUL.md", "TOOLS.md", "skills", "souls"]));
    expect(await readFile(path.join(target, "skills/task-management/SKILL.md"), "utf8")).toContain("name: task-management");
    const second = await runClasper(["init", target], {});
    expect(second.stdout).toContain("0 created");
    const forced = await runClasper(["init", target, "--force"], {});
    expect(forced.stdout).toMatch(/[1-9]\d* created, 0 skipped/);
  });
});
