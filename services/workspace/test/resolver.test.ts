import { createHash } from "node:crypto";
import { symlink } from "node:fs/promises";
import path from "node:path";
import { ConnectError, Code } from "@connectrpc/connect";
import { errorInfoOf } from "@clasper/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { workspaceConfig, type WorkspaceLimits } from "../src/config.js";
import { WorkspaceResolver } from "../src/workspace/resolver.js";
import { tempWorkspace } from "./support/workspace-dir.js";

const limits: WorkspaceLimits = { maxFileBytes: 1024 * 1024, maxTotalBytes: 8 * 1024 * 1024, maxFiles: 2000 };
const gates = { env: {}, platform: process.platform };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function workspace(files: Record<string, string | Buffer>) {
  const ws = await tempWorkspace(files);
  cleanups.push(ws.cleanup);
  return ws;
}

function resolverFor(root: string, options: { ttl?: number; clock?: () => number; limits?: Partial<WorkspaceLimits> } = {}) {
  return new WorkspaceResolver({ root, limits: { ...limits, ...options.limits }, cacheTtlMs: options.ttl ?? 0 }, gates, options.clock);
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("workspace version hash", () => {
  it("is SHA-256 over sorted `<path>\\0<sha256>` lines, whatever order the files were written in", async () => {
    const a = await workspace({ "SOUL.md": "persona", "skills/x/SKILL.md": "do x", "AGENTS.md": "rules" });
    const b = await workspace({ "skills/x/SKILL.md": "do x", "AGENTS.md": "rules", "SOUL.md": "persona" });
    const ra = await resolverFor(a.root).resolve();
    const rb = await resolverFor(b.root).resolve();
    const expected = sha(["AGENTS.md\0" + sha("rules"), "SOUL.md\0" + sha("persona"), "skills/x/SKILL.md\0" + sha("do x")].join("\n"));
    expect(ra.versionHash).toBe(expected);
    expect(rb.versionHash).toBe(expected);
    expect(ra.files.map((f) => f.path)).toEqual(["AGENTS.md", "SOUL.md", "skills/x/SKILL.md"]);
    expect(ra.files[1]).toEqual({ path: "SOUL.md", sha256: sha("persona"), sizeBytes: 7, content: "persona" });
  });

  it("changes when a file's content, name or presence changes", async () => {
    const ws = await workspace({ "SOUL.md": "persona", "AGENTS.md": "rules" });
    const fresh = async () => (await resolverFor(ws.root).resolve()).versionHash;
    const hashes = [await fresh()];
    await ws.write("SOUL.md", "persona v2");
    hashes.push(await fresh());
    await ws.write("TOOLS.md", "tools");
    hashes.push(await fresh());
    await ws.remove("TOOLS.md");
    expect(await fresh()).toBe(hashes[1]);
    await ws.remove("AGENTS.md");
    await ws.write("RULES.md", "rules"); // same content, other path
    hashes.push(await fresh());
    expect(new Set(hashes).size).toBe(4);
  });

  it("skips dot-files, dot-directories, node_modules and symbolic links", async () => {
    const ws = await workspace({ "SOUL.md": "persona" });
    const before = (await resolverFor(ws.root).resolve()).versionHash;
    await ws.write(".env", "SECRET=1");
    await ws.write(".git/config", "x");
    await ws.write("node_modules/pkg/index.js", "x");
    await ws.write("skills/.hidden/SKILL.md", "x");
    const outside = await workspace({ "secret.txt": "outside" });
    await symlink(path.join(outside.root, "secret.txt"), path.join(ws.root, "linked.md"));
    const after = await resolverFor(ws.root).resolve();
    expect(after.files.map((f) => f.path)).toEqual(["SOUL.md"]);
    expect(after.versionHash).toBe(before);
  });
});

describe("workspace cache", () => {
  it("answers from memory within the TTL and sees a change after it", async () => {
    const ws = await workspace({ "SOUL.md": "one" });
    let now = 1_000;
    const resolver = resolverFor(ws.root, { ttl: 500, clock: () => now });
    const first = await resolver.resolve();
    await ws.write("SOUL.md", "two!");
    now += 499;
    expect(await resolver.resolve()).toBe(first);
    now += 1;
    // The first request after the TTL is answered at once and starts the refresh.
    expect(await resolver.resolve()).toBe(first);
    await vi.waitFor(async () => expect((await resolver.resolve()).versionHash).not.toBe(first.versionHash));
    expect((await resolver.resolve()).files[0]!.content).toBe("two!");
  });

  it("drops the cache when a background refresh fails, so the next request sees the error", async () => {
    const ws = await workspace({ "SOUL.md": "one" });
    const resolver = resolverFor(ws.root);
    await resolver.resolve();
    await ws.write("SOUL.md", "x".repeat(2 * 1024 * 1024));
    await vi.waitFor(async () => {
      const err = await resolver.resolve().then(() => undefined, (e: unknown) => e);
      expect((err as ConnectError | undefined)?.rawMessage).toContain("CLASPER_WORKSPACE_MAX_FILE_BYTES");
    });
  });

  it("keeps the same object when nothing changed, and shares one refresh between concurrent callers", async () => {
    const ws = await workspace({ "SOUL.md": "one" });
    const resolver = resolverFor(ws.root);
    const [a, b] = await Promise.all([resolver.resolve(), resolver.resolve()]);
    expect(a).toBe(b);
    expect(await resolver.resolve()).toBe(a);
  });
});

describe("workspace limits and errors", () => {
  it("refuses a file over the per-file limit, naming the file and the variable", async () => {
    const ws = await workspace({ "SOUL.md": "x".repeat(101) });
    const err = await failure(resolverFor(ws.root, { limits: { maxFileBytes: 100 } }).resolve());
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("SOUL.md is 101 bytes, over the 100-byte limit");
    expect(err.rawMessage).toContain("CLASPER_WORKSPACE_MAX_FILE_BYTES");
    expect(errorInfoOf(err)?.code).toBe("workspace_too_large");
  });

  it("refuses a workspace over the total and file-count limits", async () => {
    const ws = await workspace({ "a.md": "x".repeat(60), "b.md": "x".repeat(60) });
    expect((await failure(resolverFor(ws.root, { limits: { maxTotalBytes: 100 } }).resolve())).rawMessage).toContain("CLASPER_WORKSPACE_MAX_TOTAL_BYTES");
    expect((await failure(resolverFor(ws.root, { limits: { maxFiles: 1 } }).resolve())).rawMessage).toContain("more than 1 files");
    expect((await resolverFor(ws.root, { limits: { maxTotalBytes: 120, maxFiles: 2 } }).resolve()).totalBytes).toBe(120);
  });

  it("says when the directory is missing", async () => {
    const err = await failure(resolverFor("/nonexistent/clasper-workspace").resolve());
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("/nonexistent/clasper-workspace does not exist");
    expect(err.rawMessage).toContain("CLASPER_WORKSPACE");
    expect(errorInfoOf(err)?.code).toBe("workspace_missing");
  });

  it("refuses a file that is not UTF-8 text, naming it", async () => {
    const ws = await workspace({ "SOUL.md": "ok", "logo.png": Buffer.from([0x89, 0x50, 0xff, 0xfe, 0x00]) });
    const err = await failure(resolverFor(ws.root).resolve());
    expect(err.rawMessage).toContain("logo.png is not UTF-8 text");
    expect(errorInfoOf(err)?.code).toBe("workspace_invalid_file");
  });

  it("recovers once the problem is fixed (errors are not cached)", async () => {
    const ws = await workspace({ "SOUL.md": "x".repeat(200) });
    const resolver = resolverFor(ws.root, { limits: { maxFileBytes: 100 } });
    await failure(resolver.resolve());
    await ws.write("SOUL.md", "short");
    expect((await resolver.resolve()).files[0]!.content).toBe("short");
  });
});

describe("workspace config", () => {
  it("defaults to ./workspace resolved against the working directory, 20000 chars per file", () => {
    const config = workspaceConfig({}, "/srv/app");
    expect(config.root).toBe("/srv/app/workspace");
    expect(config.maxCharsPerFile).toBe(20_000);
    expect(config.limits).toEqual(limits);
    expect(workspaceConfig({ CLASPER_WORKSPACE: "/data/ws" }, "/srv/app").root).toBe("/data/ws");
  });

  it("fails naming the bad variable", () => {
    expect(() => workspaceConfig({ CLASPER_WORKSPACE_MAX_FILE_BYTES: "lots" })).toThrow(/CLASPER_WORKSPACE_MAX_FILE_BYTES/);
  });
});
