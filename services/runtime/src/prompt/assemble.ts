import type { ResolveWorkspaceResponse, WorkspaceSkill } from "@clasper/proto";
import { enabledSkills, type EnabledSkill } from "./skills.js";
import { systemTimeZone, timeContextSection } from "./time.js";

/** Cap on what one workspace file contributes, characters (seed §6.1). */
export const DEFAULT_MAX_CHARS_PER_FILE = 20_000;
/** Appended to a file cut at the cap, so the model (and a reader of the trace) sees it was cut. */
export const TRUNCATION_MARKER = "\n\n[... content truncated for prompt size ...]";

export interface AssembleOptions {
  /** The agent role (third part of the session key); selects souls/<role>.md. */
  role?: string;
  /** metadata.system_prompt: replaces everything but the time context. */
  overrideSystemPrompt?: string;
  /** Append "## Current Time" (CLASPER_INCLUDE_TIME_CONTEXT); default true. */
  includeTimeContext?: boolean;
  /** IANA zone for the time context (metadata.timezone, else CLASPER_DEFAULT_TIMEZONE); default the process's. */
  timezone?: string;
  now?: Date;
  /** Default: the workspace's max_chars_per_file, else 20,000. */
  maxCharsPerFile?: number;
}

/** One part of the prompt: its source, its size in the prompt, and whether it was cut. */
export interface PromptSection {
  name: string;
  chars: number;
  truncated: boolean;
}

export interface AssembledPrompt {
  systemPrompt: string;
  sections: PromptSection[];
  enabledSkills: EnabledSkill[];
}

/** Roles name a file under souls/; anything that is not a plain file name falls back to SOUL.md. */
const ROLE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Cuts `text` to `max` characters including the marker, never splitting a surrogate pair. */
export function truncateForPrompt(text: string, max: number): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  let end = Math.max(0, max - TRUNCATION_MARKER.length);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { text: text.slice(0, end) + TRUNCATION_MARKER, truncated: true };
}

class PromptBuilder {
  readonly parts: string[] = [];
  readonly sections: PromptSection[] = [];

  add(name: string, text: string, truncated = false): void {
    this.parts.push(text);
    this.sections.push({ name, chars: text.length, truncated });
  }

  /** A workspace file, trimmed and capped, under an optional heading; empty files add nothing. */
  addFile(name: string, content: string | undefined, max: number, heading?: string): void {
    const trimmed = content?.trim();
    if (!trimmed) return;
    const cut = truncateForPrompt(trimmed, max);
    this.add(name, heading ? `${heading}\n\n${cut.text}` : cut.text, cut.truncated);
  }

  join(): string {
    return this.parts.join("\n\n");
  }
}

function fileContents(workspace: ResolveWorkspaceResponse): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of workspace.files) {
    if (f.content === "" && f.sizeBytes > 0n) {
      throw new Error(`workspace file ${f.path} has no content: resolve the workspace with include_contents`);
    }
    files.set(f.path, f.content);
  }
  return files;
}

/** "## Skills" with each enabled skill's instructions (its description when it has none), each capped. */
function addSkills(builder: PromptBuilder, skills: readonly WorkspaceSkill[], max: number): void {
  const blocks: { skill: WorkspaceSkill; text: string; truncated: boolean }[] = [];
  for (const skill of skills) {
    const body = (skill.instructions || skill.description).trim();
    if (!skill.enabled || !body) continue;
    const cut = truncateForPrompt(body, max);
    blocks.push({ skill, text: `### ${skill.emoji ? `${skill.emoji} ` : ""}${skill.name}\n\n${cut.text}`, truncated: cut.truncated });
  }
  if (blocks.length === 0) return;
  builder.parts.push(`## Skills\n\n${blocks.map((b) => b.text).join("\n\n---\n\n")}`);
  for (const b of blocks) builder.sections.push({ name: b.skill.location || `skills/${b.skill.name}`, chars: b.text.length, truncated: b.truncated });
}

/**
 * The system prompt of one execution (seed §6.2, standard mode), sections joined by a blank line:
 * persona (souls/<role>.md, else SOUL.md), "## Operating Rules" (AGENTS.md), "## Identity"
 * (IDENTITY.md), "## Tools" (TOOLS.md), "## Skills" (enabled skills), then "## Current Time".
 * `overrideSystemPrompt` replaces all but the time context, which comes last so that providers'
 * prompt caches keep the stable prefix. The enabled skills are returned either way: the tool
 * allowlist does not depend on the prompt.
 */
export function assembleSystemPrompt(workspace: ResolveWorkspaceResponse, options: AssembleOptions = {}): AssembledPrompt {
  const max = options.maxCharsPerFile ?? (workspace.maxCharsPerFile > 0 ? workspace.maxCharsPerFile : DEFAULT_MAX_CHARS_PER_FILE);
  const builder = new PromptBuilder();
  if (options.overrideSystemPrompt) {
    builder.add("metadata.system_prompt", options.overrideSystemPrompt);
  } else {
    const files = fileContents(workspace);
    const roleFile = options.role && ROLE.test(options.role) ? `souls/${options.role}.md` : undefined;
    const personaFile = roleFile && files.get(roleFile)?.trim() ? roleFile : "SOUL.md";
    builder.addFile(personaFile, files.get(personaFile), max);
    builder.addFile("AGENTS.md", files.get("AGENTS.md"), max, "## Operating Rules");
    builder.addFile("IDENTITY.md", files.get("IDENTITY.md"), max, "## Identity");
    builder.addFile("TOOLS.md", files.get("TOOLS.md"), max, "## Tools");
    addSkills(builder, workspace.skills, max);
    if (builder.parts.length === 0) {
      const role = options.role ? ` (role: ${options.role})` : "";
      builder.add("fallback", `You are a helpful AI assistant${role}. Follow instructions carefully and provide accurate, helpful responses.`);
    }
  }
  if (options.includeTimeContext ?? true) {
    builder.add("Current Time", timeContextSection(options.now ?? new Date(), options.timezone || systemTimeZone()));
  }
  return { systemPrompt: builder.join(), sections: builder.sections, enabledSkills: enabledSkills(workspace.skills) };
}
