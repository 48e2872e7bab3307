import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/** A temporary workspace directory written from a path → content map. */
export async function tempWorkspace(files: Record<string, string | Buffer>): Promise<{ root: string; write(rel: string, content: string | Buffer): Promise<void>; remove(rel: string): Promise<void>; cleanup(): Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), "clasper-ws-"));
  const write = async (rel: string, content: string | Buffer) => {
    const target = path.join(root, rel);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  };
  for (const [rel, content] of Object.entries(files)) await write(rel, content);
  return {
    root,
    write,
    remove: (rel) => rm(path.join(root, rel), { recursive: true, force: true }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
