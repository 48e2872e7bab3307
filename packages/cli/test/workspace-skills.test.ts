import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startOneProcess, type TestSystem } from "./support/system.js";

const otherOs = process.platform === "win32" ? "linux" : "win32";
let root: string;
let sys: TestSystem;

async function write(rel: string, content: string): Promise<void> {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await writeFile(path.join(root, rel), content);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "clasper-skills-"));
  await write("SOUL.md", "persona");
  await write("skills/crm/SKILL.md", '---\ndescription: Reads the CRM\nmetadata: {"openclaw": {"emoji": "📇", "requires": {"env": ["CRM_TOKEN"]}}}\npermissions:\n  tools: [crm_lookup]\n---\nLook people up.');
  await write("skills/billing/SKILL.md", '---\nmetadata: {"openclaw": {"requires": {"env": ["BILLING_KEY"]}}}\n---\nBill.');
  await write("skills/desktop/SKILL.md", `---\nmetadata: {"openclaw": {"os": ["${otherOs}"]}}\n---\nClick.`);
  await write("skills/broken/SKILL.md", "---\nname: [unclosed\n---\nBody");
  await write(".git/HEAD", "ref");
  sys = await startOneProcess({ CLASPER_WORKSPACE: root, CRM_TOKEN: "set" });
});
afterAll(async () => {
  await sys?.stop();
  await rm(root, { recursive: true, force: true });
});

describe("GET /skills through the gateway", () => {
  it("lists the configured workspace's skills with their gating, without instructions", async () => {
    const token = await sys.token({ roles: ["viewer"] });
    const res = await sys.call("GET", "/skills", { token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ enabled: 1, total: 4 });
    expect(res.body.version_hash).toMatch(/^[0-9a-f]{64}$/);
    const byName = Object.fromEntries((res.body.skills as any[]).map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(["billing", "broken", "crm", "desktop"]);
    expect(byName.crm).toMatchObject({ enabled: true, description: "Reads the CRM", emoji: "📇", location: "skills/crm/SKILL.md", allowed_tools: ["crm_lookup"] });
    expect(byName.crm.metadata).toEqual({ openclaw: { emoji: "📇", requires: { env: ["CRM_TOKEN"] } } });
    expect(byName.billing).toMatchObject({ enabled: false, gate_reason: "Missing env: BILLING_KEY" });
    expect(byName.desktop.gate_reason).toMatch(/^OS not supported/);
    expect(byName.broken.gate_reason).toMatch(/^Invalid SKILL\.md: front matter is not valid YAML/);
    expect(byName.crm.instructions ?? "").toBe("");
  });

  it("sees a new skill once the cache's TTL has passed", async () => {
    const token = await sys.token();
    const before = await sys.call("GET", "/skills", { token });
    await write("skills/notes/SKILL.md", "Take notes.");
    // Served within about one cache TTL (1 s by default), without a restart.
    await vi.waitFor(async () => expect((await sys.call("GET", "/skills", { token })).body.total).toBe(5), { timeout: 5000, interval: 100 });
    const after = await sys.call("GET", "/skills", { token });
    expect(after.body.enabled).toBe(2);
    expect(after.body.version_hash).not.toBe(before.body.version_hash);
  });

  it("needs a token, and refuses a workspace outside the token's", async () => {
    expect((await sys.call("GET", "/skills")).status).toBe(401);
    const token = await sys.token({ workspace_id: "ws-1" });
    expect((await sys.call("GET", "/skills?workspace_id=ws-2", { token })).status).toBe(403);
    expect((await sys.call("GET", "/skills?workspace_id=ws-1", { token })).status).toBe(200);
  });
});
