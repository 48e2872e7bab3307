import { createHash } from "node:crypto";
import type { Dirent, Stats } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { failedPrecondition } from "@clasper/core";
import type { WorkspaceLimits } from "../config.js";

/** A file found by the walk: what change detection needs, without reading it. */
export interface ListedFile {
  /** Workspace-relative, "/" separators. */
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** A file read and hashed. */
export interface WorkspaceFileData {
  path: string;
  /** Hex SHA-256 of the content's UTF-8 bytes. */
  sha256: string;
  sizeBytes: number;
  content: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Dot-files (and dot-directories) and node_modules are never part of a workspace. */
function skipped(name: string): boolean {
  return name.startsWith(".") || name === "node_modules";
}

function tooLarge(message: string, variable: string): Error {
  return failedPrecondition(`${message} (raise ${variable} to allow it)`, "workspace_too_large");
}

/**
 * Walks the workspace with stat only, sorted by path, enforcing the size limits before anything
 * is read. Symbolic links are not followed, so a workspace cannot pull in files from outside.
 */
export async function listWorkspaceFiles(root: string, limits: WorkspaceLimits): Promise<ListedFile[]> {
  const rootStat = await stat(root).catch(() => undefined);
  if (!rootStat?.isDirectory()) {
    throw failedPrecondition(`workspace directory ${root} does not exist or is not a directory (set CLASPER_WORKSPACE, or run \`clasper init\`)`, "workspace_missing");
  }
  const out: ListedFile[] = [];
  let total = 0;
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries: Dirent[] = await readdir(dir, { withFileTypes: true });
    const visible = entries.filter((e) => !skipped(e.name));
    const stats = await Promise.all(
      visible.map(async (e): Promise<[Dirent, Stats | undefined]> => [e, e.isFile() ? await stat(path.join(dir, e.name)).catch(() => undefined) : undefined]),
    );
    for (const [entry, st] of stats) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        await walk(path.join(dir, entry.name), rel);
        continue;
      }
      if (!st) continue; // symlinks, sockets, or a file removed while walking
      if (st.size > limits.maxFileBytes) throw tooLarge(`workspace file ${rel} is ${st.size} bytes, over the ${limits.maxFileBytes}-byte limit`, "CLASPER_WORKSPACE_MAX_FILE_BYTES");
      total += st.size;
      if (total > limits.maxTotalBytes) throw tooLarge(`workspace ${root} is over the ${limits.maxTotalBytes}-byte limit`, "CLASPER_WORKSPACE_MAX_TOTAL_BYTES");
      if (out.length + 1 > limits.maxFiles) throw tooLarge(`workspace ${root} has more than ${limits.maxFiles} files`, "CLASPER_WORKSPACE_MAX_FILES");
      out.push({ path: rel, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
    }
  };
  await walk(root, "");
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Same listing, same fingerprint: nothing changed that a stat can see. */
export function fingerprint(files: ListedFile[]): string {
  return files.map((f) => `${f.path}\0${f.size}\0${f.mtimeMs}\0${f.ctimeMs}`).join("\n");
}

/** Reads and hashes the listed files; contents must be UTF-8 text (they go into prompts). */
export async function readWorkspaceFiles(root: string, files: ListedFile[], limits: WorkspaceLimits): Promise<WorkspaceFileData[]> {
  return Promise.all(
    files.map(async (f) => {
      const bytes = await readFile(path.join(root, ...f.path.split("/")));
      // The file may have grown since it was listed.
      if (bytes.length > limits.maxFileBytes) throw tooLarge(`workspace file ${f.path} is ${bytes.length} bytes, over the ${limits.maxFileBytes}-byte limit`, "CLASPER_WORKSPACE_MAX_FILE_BYTES");
      let content: string;
      try {
        content = utf8.decode(bytes);
      } catch {
        throw failedPrecondition(`workspace file ${f.path} is not UTF-8 text; workspaces hold text only (move binary files elsewhere)`, "workspace_invalid_file");
      }
      return { path: f.path, sha256: createHash("sha256").update(bytes).digest("hex"), sizeBytes: bytes.length, content };
    }),
  );
}

/**
 * The version hash: hex SHA-256 over one line per file, `<path>\0<sha256 of content>`, sorted by
 * path and joined with "\n". The NUL cannot occur in a path, so no two file sets share lines.
 */
export function versionHash(files: readonly { path: string; sha256: string }[]): string {
  const lines = files.map((f) => `${f.path}\0${f.sha256}`).sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}
