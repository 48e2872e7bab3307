import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ResolveWorkspaceResponseSchema, WorkspaceFileSchema, WorkspaceSkillSchema, type ResolveWorkspaceResponse } from "@clasper/proto";
import { describe, expect, it } from "vitest";
import { allowedTools, assembleSystemPrompt, contextWarning, estimateTokens, isValidTimeZone, TRUNCATION_MARKER, truncateForPrompt } from "../src/prompt/index.js";

type SkillInit = { name: string; instructions?: string; enabled?: boolean; emoji?: string; allowedTools?: string[]; version?: string; pinnedVersion?: string; description?: string };

function workspace(files: Record<string, string>, skills: SkillInit[] = [], maxCharsPerFile = 0): ResolveWorkspaceResponse {
  return create(ResolveWorkspaceResponseSchema, {
    workspaceId: "default",
    versionHash: "a".repeat(64),
    maxCharsPerFile,
    files: Object.entries(files).map(([path, content]) => create(WorkspaceFileSchema, { path, content, sizeBytes: BigInt(Buffer.byteLength(content)) })),
    skills: skills.map((s) => create(WorkspaceSkillSchema, { enabled: true, location: `skills/${s.name}/SKILL.md`, ...s })),
  });
}

const full = workspace(
  { "SOUL.md": "  Default persona.  \n", "souls/analyst.md": "Analyst persona.", "AGENTS.md": "Rules.", "IDENTITY.md": "Name: Crab", "TOOLS.md": "Tool notes.", "HEARTBEAT.md": "never in the prompt" },
  [
    { name: "tasks", emoji: "✅", instructions: "Manage tasks.", allowedTools: ["list_tasks", "create_task"], version: "1.0.0" },
    { name: "disabled", instructions: "Never shown.", enabled: false, allowedTools: ["delete_everything"] },
    { name: "notes", instructions: "Take notes.", pinnedVersion: "2.1.0", version: "1.0.0" },
  ],
);
const noTime = { includeTimeContext: false } as const;

describe("assembleSystemPrompt", () => {
  it("puts persona, operating rules, identity, tools and enabled skills in that order", () => {
    const { systemPrompt, sections } = assembleSystemPrompt(full, noTime);
    expect(systemPrompt).toBe(
      [
        "Default persona.",
        "## Operating Rules\n\nRules.",
        "## Identity\n\nName: Crab",
        "## Tools\n\nTool notes.",
        "## Skills\n\n### ✅ tasks\n\nManage tasks.\n\n---\n\n### notes\n\nTake notes.",
      ].join("\n\n"),
    );
    expect(sections.map((s) => s.name)).toEqual(["SOUL.md", "AGENTS.md", "IDENTITY.md", "TOOLS.md", "skills/tasks/SKILL.md", "skills/notes/SKILL.md"]);
    expect(sections[1]).toEqual({ name: "AGENTS.md", chars: "## Operating Rules\n\nRules.".length, truncated: false });
    expect(systemPrompt).not.toContain("never in the prompt");
    expect(systemPrompt).not.toContain("Never shown.");
  });

  it("uses souls/<role>.md for the role, and SOUL.md when the role has no file (or is not a file name)", () => {
    expect(assembleSystemPrompt(full, { ...noTime, role: "analyst" }).systemPrompt).toMatch(/^Analyst persona\.\n\n## Operating Rules/);
    expect(assembleSystemPrompt(full, { ...noTime, role: "analyst" }).sections[0]!.name).toBe("souls/analyst.md");
    expect(assembleSystemPrompt(full, { ...noTime, role: "scout" }).systemPrompt).toMatch(/^Default persona\./);
    expect(assembleSystemPrompt(full, { ...noTime, role: "../SOUL" }).systemPrompt).toMatch(/^Default persona\./);
  });

  it("leaves out missing and empty files and falls back to a generic prompt when nothing is there", () => {
    const sparse = workspace({ "AGENTS.md": "Rules.", "IDENTITY.md": "  \n" });
    expect(assembleSystemPrompt(sparse, noTime).systemPrompt).toBe("## Operating Rules\n\nRules.");
    expect(assembleSystemPrompt(workspace({}), { ...noTime, role: "scout" }).systemPrompt).toBe(
      "You are a helpful AI assistant (role: scout). Follow instructions carefully and provide accurate, helpful responses.",
    );
  });

  it("cuts a file over the cap to exactly the cap, ending with the visible marker", () => {
    const long = "x".repeat(25_000);
    const { systemPrompt, sections } = assembleSystemPrompt(workspace({ "SOUL.md": long, "AGENTS.md": "Rules." }, [{ name: "big", instructions: "y".repeat(30_000) }]), noTime);
    const persona = systemPrompt.split("\n\n## Operating Rules")[0]!;
    expect(persona.length).toBe(20_000);
    expect(persona.endsWith("\n\n[... content truncated for prompt size ...]")).toBe(true);
    expect(sections.map((s) => s.truncated)).toEqual([true, false, true]);
    expect(systemPrompt).toContain("y".repeat(100) + TRUNCATION_MARKER);
  });

  it("takes the cap from the options, else from the workspace", () => {
    const ws = workspace({ "SOUL.md": "z".repeat(1000) }, [], 500);
    expect(assembleSystemPrompt(ws, noTime).systemPrompt.length).toBe(500);
    expect(assembleSystemPrompt(ws, { ...noTime, maxCharsPerFile: 1000 }).systemPrompt.length).toBe(1000);
    expect(assembleSystemPrompt(ws, { ...noTime, maxCharsPerFile: 999 }).sections[0]!.truncated).toBe(true);
  });

  it("never splits a surrogate pair when cutting", () => {
    const emoji = "😀".repeat(100);
    const cut = truncateForPrompt(emoji, 50 + TRUNCATION_MARKER.length + 1);
    expect(cut.truncated).toBe(true);
    expect(cut.text.slice(0, -TRUNCATION_MARKER.length)).toBe("😀".repeat(25));
  });

  it("replaces everything with metadata.system_prompt but keeps the time context and the skills' tools", () => {
    const now = new Date("2024-01-15T14:04:00Z");
    const { systemPrompt, sections, enabledSkills } = assembleSystemPrompt(full, { overrideSystemPrompt: "You are a pirate.", now, timezone: "UTC" });
    expect(systemPrompt).toBe("You are a pirate.\n\n## Current Time\n\n- Date: Monday, January 15, 2024\n- Time: 2:04 PM\n- Timezone: UTC (UTC+00:00)");
    expect(sections.map((s) => s.name)).toEqual(["metadata.system_prompt", "Current Time"]);
    expect(enabledSkills.map((s) => s.name)).toEqual(["tasks", "notes"]);
  });

  it("appends the current time last, in the requested zone with its offset", () => {
    const now = new Date("2024-07-01T23:30:00Z");
    const tokyo = assembleSystemPrompt(full, { now, timezone: "Asia/Tokyo" }).systemPrompt;
    expect(tokyo.endsWith("## Current Time\n\n- Date: Tuesday, July 2, 2024\n- Time: 8:30 AM\n- Timezone: Asia/Tokyo (UTC+09:00)")).toBe(true);
    const ny = assembleSystemPrompt(full, { now, timezone: "America/New_York" }).systemPrompt;
    expect(ny).toContain("- Date: Monday, July 1, 2024\n- Time: 7:30 PM\n- Timezone: America/New_York (UTC-04:00)");
    expect(assembleSystemPrompt(full, { now }).systemPrompt).toContain("## Current Time");
  });

  it("refuses an unknown time zone with a 400 naming metadata.timezone", () => {
    let err: unknown;
    try {
      assembleSystemPrompt(full, { timezone: "Mars/Olympus_Mons" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toContain("metadata.timezone");
    expect((err as ConnectError).rawMessage).toContain("Mars/Olympus_Mons");
    expect(isValidTimeZone("Europe/Paris")).toBe(true);
    expect(isValidTimeZone("Mars/Olympus_Mons")).toBe(false);
  });

  it("refuses a workspace resolved without contents instead of building an empty prompt", () => {
    const bare = create(ResolveWorkspaceResponseSchema, { files: [create(WorkspaceFileSchema, { path: "SOUL.md", sizeBytes: 10n })] });
    expect(() => assembleSystemPrompt(bare, noTime)).toThrow(/include_contents/);
  });
});

describe("enabled skills and tools", () => {
  it("lists enabled skills with the pinned version, else the front matter's", () => {
    expect(assembleSystemPrompt(full, noTime).enabledSkills).toEqual([
      { name: "tasks", version: "1.0.0", tools: ["list_tasks", "create_task"] },
      { name: "notes", version: "2.1.0", tools: [] },
    ]);
  });

  it("allows the union of the enabled skills' tools; a skill without a list allows none", () => {
    expect(allowedTools([{ tools: ["b", "a"] }, { tools: [] }, { tools: ["a", "c"] }])).toEqual(["a", "b", "c"]);
    expect(allowedTools(assembleSystemPrompt(full, noTime).enabledSkills)).toEqual(["create_task", "list_tasks"]);
    expect(allowedTools([{ tools: [] }])).toEqual([]);
  });
});

describe("context warning", () => {
  it("estimates one token per four characters over all texts, rounded up", () => {
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("abcde")).toBe(2);
    expect(estimateTokens("ab", "cd", "e")).toBe(2);
  });

  it("warns only above the threshold, with the documented text", () => {
    expect(contextWarning(750, 1000)).toBeUndefined();
    expect(contextWarning(751, 1000)).toBe("Context usage is 75.1% of 1000 tokens. Consider compacting history.");
    expect(contextWarning(104_064, 128_000, 80)).toBe("Context usage is 81.3% of 128000 tokens. Consider compacting history.");
    expect(contextWarning(104_064, 128_000, 90)).toBeUndefined();
    expect(contextWarning(5000, 0)).toBeUndefined();
  });
});
