import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { DEFAULT_WORKSPACE, principalOf, workspaceScope } from "@clasper/auth";
import { notFound } from "@clasper/core";
import {
  ListWorkspaceSkillsResponseSchema,
  ResolveWorkspaceResponseSchema,
  WorkspaceFileSchema,
  WorkspaceSkillSchema,
  type ListWorkspaceSkillsRequest,
  type ListWorkspaceSkillsResponse,
  type ResolveWorkspaceRequest,
  type ResolveWorkspaceResponse,
  type WorkspaceFile,
  type WorkspaceSkill,
} from "@clasper/proto";
import type { ResolvedWorkspace, WorkspaceResolver } from "../workspace/resolver.js";
import type { ParsedSkill } from "../workspace/skills.js";

const DEFAULT_ENVIRONMENT = "default";

/** The proto forms of one resolved version, built once and shared (they are never mutated). */
interface VersionMessages {
  filesWithContents: WorkspaceFile[];
  filesWithoutContents: WorkspaceFile[];
  skills: WorkspaceSkill[];
  skillsWithoutInstructions: WorkspaceSkill[];
}

function skillMessage(skill: ParsedSkill, withInstructions: boolean): WorkspaceSkill {
  return create(WorkspaceSkillSchema, {
    name: skill.name,
    description: skill.description,
    instructions: withInstructions ? skill.instructions : "",
    enabled: skill.enabled,
    gateReason: skill.gateReason,
    location: skill.location,
    emoji: skill.emoji,
    ...(skill.metadata ? { metadata: skill.metadata } : {}),
    always: skill.always,
    allowedTools: skill.allowedTools,
    version: skill.version,
  });
}

function buildMessages(resolved: ResolvedWorkspace): VersionMessages {
  const file = (f: ResolvedWorkspace["files"][number], withContent: boolean) =>
    create(WorkspaceFileSchema, { path: f.path, sha256: f.sha256, sizeBytes: BigInt(f.sizeBytes), content: withContent ? f.content : "" });
  return {
    filesWithContents: resolved.files.map((f) => file(f, true)),
    filesWithoutContents: resolved.files.map((f) => file(f, false)),
    skills: resolved.skills.map((s) => skillMessage(s, true)),
    skillsWithoutInstructions: resolved.skills.map((s) => skillMessage(s, false)),
  };
}

/**
 * ResolveWorkspace (internal) and GET /skills over the deployment's workspace directory. The
 * directory belongs to the deployment, not to a tenant: every tenant resolves the same files
 * until per-tenant versions and environment pins arrive (docs/RUNTIME.md).
 */
export class WorkspaceResolutionHandlers {
  private readonly messages = new WeakMap<ResolvedWorkspace, VersionMessages>();

  constructor(
    private readonly resolver: WorkspaceResolver,
    private readonly maxCharsPerFile: number,
  ) {}

  async resolveWorkspace(req: ResolveWorkspaceRequest, ctx: HandlerContext): Promise<ResolveWorkspaceResponse> {
    const workspaceId = workspaceFor(req.workspaceId, ctx);
    const { resolved, messages } = await this.current();
    // Only the directory's current version exists until versions are stored; a replay of an
    // older one cannot be served, and saying so beats answering different files.
    if (req.versionHash && !resolved.versionHash.startsWith(req.versionHash)) {
      throw notFound(`workspace version ${req.versionHash} (only the current version ${resolved.versionHash} of the workspace directory can be resolved)`, "version_hash");
    }
    return create(ResolveWorkspaceResponseSchema, {
      workspaceId,
      environment: req.environment || DEFAULT_ENVIRONMENT,
      versionHash: resolved.versionHash,
      files: req.includeContents ? messages.filesWithContents : messages.filesWithoutContents,
      skills: messages.skills,
      maxCharsPerFile: this.maxCharsPerFile,
    });
  }

  async listWorkspaceSkills(req: ListWorkspaceSkillsRequest, ctx: HandlerContext): Promise<ListWorkspaceSkillsResponse> {
    workspaceFor(req.workspaceId, ctx);
    const { resolved, messages } = await this.current();
    return create(ListWorkspaceSkillsResponseSchema, {
      enabled: resolved.skills.filter((s) => s.enabled).length,
      total: resolved.skills.length,
      skills: messages.skillsWithoutInstructions,
      versionHash: resolved.versionHash,
    });
  }

  private async current(): Promise<{ resolved: ResolvedWorkspace; messages: VersionMessages }> {
    const resolved = await this.resolver.resolve();
    let messages = this.messages.get(resolved);
    if (!messages) {
      messages = buildMessages(resolved);
      this.messages.set(resolved, messages);
    }
    return { resolved, messages };
  }
}

/** The workspace a request names, else the token's, else "default"; never outside the token's workspace. */
function workspaceFor(requested: string, ctx: HandlerContext): string {
  return workspaceScope(principalOf(ctx), requested) ?? DEFAULT_WORKSPACE;
}
