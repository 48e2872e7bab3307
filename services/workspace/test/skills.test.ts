import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseSkill, parseSkills, type GateContext } from "../src/workspace/skills.js";

const here: GateContext = { env: {}, platform: process.platform };
const otherOs = process.platform === "win32" ? "linux" : "win32";

function skill(content: string, ctx: GateContext = here, dir = "demo") {
  return parseSkill(`skills/${dir}/SKILL.md`, dir, content, ctx);
}

describe("SKILL.md front matter", () => {
  it("parses the template workspace's skill", async () => {
    const content = await readFile(fileURLToPath(new URL("../../../workspace/skills/task-management/SKILL.md", import.meta.url)), "utf8");
    const parsed = skill(content, here, "task-management");
    expect(parsed).toMatchObject({
      name: "task-management",
      enabled: true,
      gateReason: "",
      emoji: "✅",
      location: "skills/task-management/SKILL.md",
      allowedTools: ["list_tasks", "create_task", "post_message", "create_document"],
    });
    expect(parsed.description).toMatch(/^Create, find and update tasks/);
    expect(parsed.instructions).toMatch(/^When the user asks for work to be tracked:/);
    expect(parsed.metadata).toEqual({ openclaw: { emoji: "✅" } });
  });

  it("reads multi-line YAML: block lists, nested mappings, quoted strings and a version", () => {
    const parsed = skill(
      [
        "---",
        'name: "reporting"',
        "description: >",
        "  Builds weekly reports",
        "  from tasks.",
        "version: 1.2.0",
        "metadata:",
        "  openclaw:",
        "    emoji: 📊",
        "    requires:",
        "      env: [REPORT_BUCKET]",
        "permissions:",
        "  tools:",
        "    - list_tasks",
        "    - create_document",
        "    - list_tasks",
        "---",
        "Write the report.",
      ].join("\n"),
      { env: { REPORT_BUCKET: "s3://x" }, platform: process.platform },
    );
    expect(parsed).toMatchObject({ name: "reporting", description: "Builds weekly reports from tasks.", version: "1.2.0", emoji: "📊", enabled: true, instructions: "Write the report." });
    expect(parsed.allowedTools).toEqual(["list_tasks", "create_document"]);
  });

  it("defaults the name to the directory; no front matter means the whole file is the instructions", () => {
    expect(skill("Just do it.\n", here, "plain")).toMatchObject({ name: "plain", description: "", instructions: "Just do it.", enabled: true, allowedTools: [] });
    expect(skill("---\n---\nBody", here, "empty")).toMatchObject({ name: "empty", instructions: "Body", enabled: true });
  });

  it("accepts OpenClaw's metadata written as a quoted JSON string", () => {
    const parsed = skill(`---\nmetadata: '{"openclaw": {"emoji": "🔎", "always": true}}'\n---\nx`);
    expect(parsed).toMatchObject({ emoji: "🔎", always: true, enabled: true });
  });

  it("disables a skill with malformed YAML, with the parser's reason, instead of failing", () => {
    const parsed = skill("---\nname: broken\npermissions: {tools: [a, b\n---\nBody");
    expect(parsed.enabled).toBe(false);
    expect(parsed.name).toBe("demo");
    expect(parsed.gateReason).toMatch(/^Invalid SKILL\.md: front matter is not valid YAML: /);
    expect(parsed.allowedTools).toEqual([]);
  });

  it("disables a skill whose front matter has the wrong shape, naming the field", () => {
    expect(skill("---\npermissions:\n  tools: list_tasks\n---\nx").gateReason).toBe("Invalid SKILL.md: front matter: permissions.tools: Expected array, received string");
    expect(skill("---\n- a\n- b\n---\nx").gateReason).toBe("Invalid SKILL.md: front matter must be a YAML mapping");
    expect(skill("---\nmetadata: {openclaw: {always: yes please}}\n---\nx").gateReason).toMatch(/metadata\.openclaw\.always/);
    expect(skill("---\nname: x\nname: y\n---\nx").gateReason).toMatch(/not valid YAML/);
  });

  it("disables a skill whose front matter is never closed", () => {
    expect(skill("---\nname: x\nBody without end").gateReason).toBe("Invalid SKILL.md: front matter is not closed by a '---' line");
  });
});

describe("skill gating", () => {
  const gated = (openclaw: string) => `---\nmetadata: {"openclaw": ${openclaw}}\n---\nBody`;

  it("disables a skill whose required env vars are missing or empty, naming them", () => {
    const content = gated('{"requires": {"env": ["API_A", "API_B", "API_C"]}}');
    expect(skill(content, { env: { API_B: "set", API_C: "" }, platform: process.platform })).toMatchObject({ enabled: false, gateReason: "Missing env: API_A, API_C" });
    expect(skill(content, { env: { API_A: "1", API_B: "2", API_C: "3" }, platform: process.platform })).toMatchObject({ enabled: true, gateReason: "" });
  });

  it("disables a skill for another operating system, naming both", () => {
    expect(skill(gated(`{"os": ["${otherOs}"]}`))).toMatchObject({ enabled: false, gateReason: `OS not supported (requires: ${otherOs}; this is ${process.platform})` });
    expect(skill(gated(`{"os": ["${otherOs}", "${process.platform}"]}`)).enabled).toBe(true);
  });

  it("checks the OS before env, and `always` skips both", () => {
    expect(skill(gated(`{"os": ["${otherOs}"], "requires": {"env": ["NOPE"]}}`)).gateReason).toMatch(/^OS not supported/);
    expect(skill(gated(`{"always": true, "os": ["${otherOs}"], "requires": {"env": ["NOPE"]}}`))).toMatchObject({ enabled: true, always: true });
  });

  it("lists skills in path order, ignores other files and disables a second skill with a taken name", () => {
    const skills = parseSkills(
      [
        { path: "SOUL.md", content: "x" },
        { path: "skills/a/SKILL.md", content: "---\nname: shared\n---\nA" },
        { path: "skills/a/notes.md", content: "x" },
        { path: "skills/b/SKILL.md", content: "---\nname: shared\n---\nB" },
        { path: "skills/c/nested/SKILL.md", content: "x" },
        { path: "skills/d/SKILL.md", content: "D" },
      ],
      here,
    );
    expect(skills.map((s) => [s.name, s.enabled, s.gateReason])).toEqual([
      ["shared", true, ""],
      ["shared", false, 'Duplicate skill name "shared" (already defined by skills/a/SKILL.md)'],
      ["d", true, ""],
    ]);
  });
});
