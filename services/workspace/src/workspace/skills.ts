import type { JsonObject } from "@bufbuild/protobuf";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

/** A skill parsed from skills/<dir>/SKILL.md, with its gating decided. */
export interface ParsedSkill {
  name: string;
  description: string;
  /** The body after the front matter, trimmed. */
  instructions: string;
  enabled: boolean;
  /** Why it is disabled; empty when enabled. */
  gateReason: string;
  /** Workspace-relative path of the SKILL.md. */
  location: string;
  emoji: string;
  /** The front matter's `metadata` object (e.g. {"openclaw": {...}}). */
  metadata: JsonObject | undefined;
  always: boolean;
  /** permissions.tools; empty = the skill allows no tools. */
  allowedTools: string[];
  version: string;
}

/** What gating looks at: the deployment's environment and operating system. */
export interface GateContext {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
}

const SKILL_PATH = /^skills\/([^/]+)\/SKILL\.md$/;
const FRONT_MATTER = /^\uFEFF?---[ \t]*\r?\n(?:([\s\S]*?)\r?\n)?---[ \t]*(?:\r?\n|$)/;

const stringList = z.array(z.string().min(1));

const openclawSchema = z
  .object({
    emoji: z.string().optional(),
    always: z.boolean().optional(),
    os: stringList.optional(),
    requires: z.object({ env: stringList.optional() }).passthrough().optional(),
  })
  .passthrough();

function jsonFromString(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value; // reported as "expected object, received string"
  }
}

const frontMatterSchema = z
  .object({
    name: z.string().trim().min(1).max(128).optional(),
    description: z.string().optional(),
    version: z.union([z.string(), z.number()]).transform(String).optional(),
    // OpenClaw writes metadata as one line of JSON; YAML reads that as a mapping already. A quoted
    // JSON string is accepted too.
    metadata: z
      .preprocess(jsonFromString, z.object({ openclaw: openclawSchema.optional() }).passthrough())
      .optional(),
    permissions: z.object({ tools: stringList.optional() }).passthrough().optional(),
  })
  .passthrough();

/** Front matter and body of a SKILL.md; front matter absent → empty object. */
function splitFrontMatter(content: string): { yaml: string | undefined; body: string } | { error: string } {
  const match = FRONT_MATTER.exec(content);
  if (match) return { yaml: match[1] ?? "", body: content.slice(match[0].length) };
  if (/^\uFEFF?---[ \t]*\r?\n/.test(content)) return { error: "front matter is not closed by a '---' line" };
  return { yaml: undefined, body: content };
}

function issueText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "front matter"}: ${i.message}`).join("; ");
}

/** Reads the front matter with a real YAML parser and validates its shape; errors become the gate reason. */
function readFrontMatter(yamlText: string | undefined): { data: z.infer<typeof frontMatterSchema> } | { error: string } {
  if (yamlText === undefined || yamlText.trim() === "") return { data: {} };
  let raw: unknown;
  try {
    raw = parseYaml(yamlText);
  } catch (err) {
    return { error: `front matter is not valid YAML: ${(err as Error).message.split("\n")[0]}` };
  }
  if (raw === null || raw === undefined) return { data: {} };
  if (typeof raw !== "object" || Array.isArray(raw)) return { error: "front matter must be a YAML mapping" };
  const parsed = frontMatterSchema.safeParse(raw);
  return parsed.success ? { data: parsed.data } : { error: `front matter: ${issueText(parsed.error)}` };
}

/** Why the skill cannot run here, or "" (seed §6.5: always wins; then OS; then env). */
function gate(openclaw: z.infer<typeof openclawSchema> | undefined, ctx: GateContext): string {
  if (!openclaw || openclaw.always) return "";
  if (openclaw.os && openclaw.os.length > 0 && !openclaw.os.includes(ctx.platform)) {
    return `OS not supported (requires: ${openclaw.os.join(", ")}; this is ${ctx.platform})`;
  }
  const missing = (openclaw.requires?.env ?? []).filter((name) => !ctx.env[name]);
  return missing.length > 0 ? `Missing env: ${missing.join(", ")}` : "";
}

/** JSON-safe copy for a protobuf Struct (YAML can hold values JSON cannot, e.g. .inf). */
function jsonObject(value: object): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

/** Parses one SKILL.md. Never throws: a broken skill is disabled with the reason. */
export function parseSkill(location: string, dir: string, content: string, ctx: GateContext): ParsedSkill {
  const base: ParsedSkill = {
    name: dir,
    description: "",
    instructions: "",
    enabled: false,
    gateReason: "",
    location,
    emoji: "",
    metadata: undefined,
    always: false,
    allowedTools: [],
    version: "",
  };
  const split = splitFrontMatter(content);
  if ("error" in split) return { ...base, gateReason: `Invalid SKILL.md: ${split.error}` };
  const instructions = split.body.trim();
  const front = readFrontMatter(split.yaml);
  if ("error" in front) return { ...base, instructions, gateReason: `Invalid SKILL.md: ${front.error}` };
  const fm = front.data;
  const openclaw = fm.metadata?.openclaw;
  const gateReason = gate(openclaw, ctx);
  return {
    ...base,
    name: fm.name ?? dir,
    description: fm.description?.trim() ?? "",
    instructions,
    enabled: gateReason === "",
    gateReason,
    emoji: openclaw?.emoji ?? "",
    metadata: fm.metadata ? jsonObject(fm.metadata) : undefined,
    always: openclaw?.always ?? false,
    allowedTools: [...new Set(fm.permissions?.tools ?? [])],
    version: fm.version ?? "",
  };
}

/**
 * Every skills/<dir>/SKILL.md of a workspace, in path order. A second skill claiming a name
 * already taken is disabled, so a name always means one set of instructions and tools.
 */
export function parseSkills(files: readonly { path: string; content: string }[], ctx: GateContext): ParsedSkill[] {
  const skills: ParsedSkill[] = [];
  const byName = new Map<string, string>();
  for (const file of files) {
    const match = SKILL_PATH.exec(file.path);
    if (!match) continue;
    const skill = parseSkill(file.path, match[1]!, file.content, ctx);
    const owner = byName.get(skill.name);
    if (owner !== undefined) {
      skills.push({ ...skill, enabled: false, gateReason: `Duplicate skill name "${skill.name}" (already defined by ${owner})` });
      continue;
    }
    byName.set(skill.name, file.path);
    skills.push(skill);
  }
  return skills;
}
