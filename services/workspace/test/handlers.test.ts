import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ListWorkspaceSkillsRequestSchema, ResolveWorkspaceRequestSchema } from "@clasper/proto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WorkspaceResolutionHandlers } from "../src/handlers/resolution.js";
import { WorkspaceResolver } from "../src/workspace/resolver.js";
import { callerContext } from "./support/caller.js";
import { tempWorkspace } from "./support/workspace-dir.js";

const otherOs = process.platform === "win32" ? "linux" : "win32";
let ws: Awaited<ReturnType<typeof tempWorkspace>>;
let handlers: WorkspaceResolutionHandlers;

beforeAll(async () => {
  ws = await tempWorkspace({
    "SOUL.md": "persona",
    "AGENTS.md": "rules",
    "skills/search/SKILL.md": '---\ndescription: Search things\nmetadata: {"openclaw": {"emoji": "🔎", "requires": {"env": ["SEARCH_KEY"]}}}\npermissions:\n  tools: [search]\n---\nSearch well.',
    "skills/mac/SKILL.md": `---\nmetadata: {"openclaw": {"os": ["${otherOs}"]}}\n---\nOnly elsewhere.`,
    "skills/notes/SKILL.md": "Take notes.",
  });
  const resolver = new WorkspaceResolver({ root: ws.root, limits: { maxFileBytes: 1 << 20, maxTotalBytes: 1 << 23, maxFiles: 100 }, cacheTtlMs: 0 }, { env: { SEARCH_KEY: "k" }, platform: process.platform });
  handlers = new WorkspaceResolutionHandlers(resolver, 20_000);
});
afterAll(() => ws.cleanup());

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("ResolveWorkspace", () => {
  it("answers the directory's current version with its files and parsed skills", async () => {
    const res = await handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, { includeContents: true }), callerContext());
    expect(res.workspaceId).toBe("default");
    expect(res.environment).toBe("default");
    expect(res.versionHash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.maxCharsPerFile).toBe(20_000);
    expect(res.pin).toBeUndefined();
    expect(res.files.map((f) => [f.path, f.content])).toEqual([
      ["AGENTS.md", "rules"],
      ["SOUL.md", "persona"],
      ["skills/mac/SKILL.md", expect.stringContaining("Only elsewhere.")],
      ["skills/notes/SKILL.md", "Take notes."],
      ["skills/search/SKILL.md", expect.stringContaining("Search well.")],
    ]);
    expect(res.files[1]!.sizeBytes).toBe(7n);
    expect(res.skills.map((s) => ({ name: s.name, enabled: s.enabled, gateReason: s.gateReason, tools: s.allowedTools, instructions: s.instructions }))).toEqual([
      { name: "mac", enabled: false, gateReason: `OS not supported (requires: ${otherOs}; this is ${process.platform})`, tools: [], instructions: "Only elsewhere." },
      { name: "notes", enabled: true, gateReason: "", tools: [], instructions: "Take notes." },
      { name: "search", enabled: true, gateReason: "", tools: ["search"], instructions: "Search well." },
    ]);
    expect(res.skills[2]!.metadata).toEqual({ openclaw: { emoji: "🔎", requires: { env: ["SEARCH_KEY"] } } });
  });

  it("leaves contents out unless asked, and echoes the workspace and environment", async () => {
    const res = await handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, { workspaceId: "acme", environment: "prod" }), callerContext());
    expect(res).toMatchObject({ workspaceId: "acme", environment: "prod" });
    expect(res.files.every((f) => f.content === "" && f.sha256.length === 64)).toBe(true);
  });

  it("takes the token's workspace when none is named, and refuses another one", async () => {
    const res = await handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, {}), callerContext({ workspaceId: "ws-1" }));
    expect(res.workspaceId).toBe("ws-1");
    const err = await failure(handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, { workspaceId: "ws-2" }), callerContext({ workspaceId: "ws-1" })));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it("resolves an explicit version only when it is the current one (full hash or prefix)", async () => {
    const { versionHash } = await handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, {}), callerContext());
    const byPrefix = await handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, { versionHash: versionHash.slice(0, 16) }), callerContext());
    expect(byPrefix.versionHash).toBe(versionHash);
    const err = await failure(handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, { versionHash: "0".repeat(64) }), callerContext()));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toContain(versionHash);
  });

  it("serves a new version after a file changes", async () => {
    const before = await handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, {}), callerContext());
    await ws.write("skills/notes/SKILL.md", "---\npermissions: {tools: [post_message]}\n---\nTake better notes.");
    const next = () => handlers.resolveWorkspace(create(ResolveWorkspaceRequestSchema, { includeContents: true }), callerContext());
    await vi.waitFor(async () => expect((await next()).versionHash).not.toBe(before.versionHash));
    const after = await next();
    expect(after.skills.find((s) => s.name === "notes")).toMatchObject({ instructions: "Take better notes.", allowedTools: ["post_message"] });
  });
});

describe("ListWorkspaceSkills", () => {
  it("counts enabled and total skills and leaves instructions out", async () => {
    const res = await handlers.listWorkspaceSkills(create(ListWorkspaceSkillsRequestSchema, {}), callerContext({}, "listWorkspaceSkills"));
    expect(res).toMatchObject({ enabled: 2, total: 3 });
    expect(res.versionHash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.skills.map((s) => s.name)).toEqual(["mac", "notes", "search"]);
    expect(res.skills.every((s) => s.instructions === "")).toBe(true);
    expect(res.skills.find((s) => s.name === "search")).toMatchObject({ description: "Search things", emoji: "🔎", location: "skills/search/SKILL.md" });
  });
});
