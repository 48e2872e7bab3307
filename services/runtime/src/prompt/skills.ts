import type { WorkspaceSkill } from "@clasper/proto";

/** A skill the prompt includes, with the tools it lets the model call. */
export interface EnabledSkill {
  name: string;
  /** Registry version pinned for the environment, else the front matter's version. */
  version?: string;
  tools: string[];
}

/** The enabled skills of a resolved workspace, in workspace order. */
export function enabledSkills(skills: readonly WorkspaceSkill[]): EnabledSkill[] {
  return skills
    .filter((s) => s.enabled)
    .map((s) => {
      const version = s.pinnedVersion || s.version;
      return { name: s.name, ...(version ? { version } : {}), tools: [...s.allowedTools] };
    });
}

/**
 * The tools the model may call: the union of the enabled skills' `permissions.tools`, sorted.
 * A skill without a list allows none, so an empty result means no tools at all.
 */
export function allowedTools(skills: readonly Pick<EnabledSkill, "tools">[]): string[] {
  const names = new Set<string>();
  for (const skill of skills) for (const tool of skill.tools) names.add(tool);
  return [...names].sort();
}
