import path from "node:path";
import { z } from "zod";
import { parseConfig } from "@clasper/core";

const bytes = (fallback: number) => z.coerce.number().int().min(1).max(1024 * 1024 * 1024).default(fallback);

/** The workspace service's settings; every key is an environment variable. */
export const workspaceConfigShape = {
  /** The deployment's workspace directory (the layout `clasper init` creates); relative to the working directory. */
  CLASPER_WORKSPACE: z.string().default("./workspace"),
  /** Largest single workspace file, bytes. */
  CLASPER_WORKSPACE_MAX_FILE_BYTES: bytes(1024 * 1024),
  /**
   * Largest whole workspace, bytes. The default stays well under the 16 MiB a peer reads in one
   * message, so a resolution with contents always fits.
   */
  CLASPER_WORKSPACE_MAX_TOTAL_BYTES: bytes(8 * 1024 * 1024),
  /** Most files in a workspace (the same cap as an uploaded version). */
  CLASPER_WORKSPACE_MAX_FILES: z.coerce.number().int().min(1).max(100_000).default(2000),
  /** How long a resolution is reused before the directory is checked for changes again, ms. */
  CLASPER_WORKSPACE_CACHE_TTL_MS: z.coerce.number().int().min(0).max(3_600_000).default(1000),
  /** Per-file cap on what the prompt takes from a workspace file, characters (answered as max_chars_per_file). */
  CLASPER_MAX_CHARS_PER_FILE: z.coerce.number().int().min(200).max(1_000_000).default(20_000),
};

export interface WorkspaceLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
  maxFiles: number;
}

export interface WorkspaceConfig {
  /** Absolute path of the workspace directory. */
  root: string;
  limits: WorkspaceLimits;
  cacheTtlMs: number;
  maxCharsPerFile: number;
}

/** Parsed once at build time from the service environment. */
export function workspaceConfig(env: Readonly<Record<string, string | undefined>>, cwd: string = process.cwd()): WorkspaceConfig {
  const parsed = parseConfig(workspaceConfigShape, { ...env });
  return {
    root: path.resolve(cwd, parsed.CLASPER_WORKSPACE),
    limits: {
      maxFileBytes: parsed.CLASPER_WORKSPACE_MAX_FILE_BYTES,
      maxTotalBytes: parsed.CLASPER_WORKSPACE_MAX_TOTAL_BYTES,
      maxFiles: parsed.CLASPER_WORKSPACE_MAX_FILES,
    },
    cacheTtlMs: parsed.CLASPER_WORKSPACE_CACHE_TTL_MS,
    maxCharsPerFile: parsed.CLASPER_MAX_CHARS_PER_FILE,
  };
}
