import type { WorkspaceConfig } from "../config.js";
import { fingerprint, listWorkspaceFiles, readWorkspaceFiles, versionHash, type WorkspaceFileData } from "./scan.js";
import { parseSkills, type GateContext, type ParsedSkill } from "./skills.js";

/** The workspace directory as one content-addressed version. Never mutated once built. */
export interface ResolvedWorkspace {
  root: string;
  versionHash: string;
  /** Sorted by path. */
  files: readonly WorkspaceFileData[];
  skills: readonly ParsedSkill[];
  totalBytes: number;
}

interface CacheEntry {
  resolved: ResolvedWorkspace;
  fingerprint: string;
  checkedAt: number;
}

/**
 * Resolves the deployment's workspace directory. A resolution is answered from memory; once it is
 * older than the TTL, a request starts one background walk with stat only that decides whether
 * anything changed (paths, sizes, mtimes), and only then are files read and hashed again. So a
 * change is served within about one TTL, and no request waits for the disk except the first.
 */
export class WorkspaceResolver {
  private cache: CacheEntry | undefined;
  private inflight: Promise<ResolvedWorkspace> | undefined;

  constructor(
    private readonly config: Pick<WorkspaceConfig, "root" | "limits" | "cacheTtlMs">,
    private readonly gates: GateContext,
    private readonly clock: () => number = Date.now,
  ) {}

  resolve(): Promise<ResolvedWorkspace> {
    const cache = this.cache;
    if (!cache) return this.startRefresh();
    if (this.clock() - cache.checkedAt >= this.config.cacheTtlMs) {
      // Stale while revalidating: requests never wait for the walk once something was served. A
      // failed refresh drops the cache, so the next request waits and sees the error.
      this.startRefresh().catch(() => {
        this.cache = undefined;
      });
    }
    return Promise.resolve(cache.resolved);
  }

  private startRefresh(): Promise<ResolvedWorkspace> {
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async refresh(attempt = 1): Promise<ResolvedWorkspace> {
    const { root, limits } = this.config;
    const listed = await listWorkspaceFiles(root, limits);
    const print = fingerprint(listed);
    if (this.cache && this.cache.fingerprint === print) {
      this.cache.checkedAt = this.clock();
      return this.cache.resolved;
    }
    let files: WorkspaceFileData[];
    try {
      files = await readWorkspaceFiles(root, listed, limits);
    } catch (err) {
      // A file removed between the walk and the read: walk again.
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && attempt < 3) return this.refresh(attempt + 1);
      throw err;
    }
    const resolved: ResolvedWorkspace = {
      root,
      versionHash: versionHash(files),
      files,
      skills: parseSkills(files, this.gates),
      totalBytes: files.reduce((sum, f) => sum + f.sizeBytes, 0),
    };
    // Keep the previous object when only metadata changed, so per-version memos stay warm.
    const same = this.cache?.resolved.versionHash === resolved.versionHash ? this.cache.resolved : resolved;
    this.cache = { resolved: same, fingerprint: print, checkedAt: this.clock() };
    return same;
  }
}
