import { cp, mkdir, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The template workspace shipped with the CLI (repository folder workspace/). */
export const TEMPLATE_DIR = fileURLToPath(new URL("../../../workspace", import.meta.url));

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = path.join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}

/** `clasper init [dir]`: copies the template, skipping files that exist unless forced. */
export async function initWorkspace(target: string, force: boolean): Promise<{ created: string[]; skipped: string[] }> {
  const created: string[] = [];
  const skipped: string[] = [];
  for (const rel of await listFiles(TEMPLATE_DIR)) {
    const destination = path.resolve(target, rel);
    const exists = await stat(destination).then(() => true, () => false);
    if (exists && !force) {
      skipped.push(rel);
      continue;
    }
    await mkdir(path.dirname(destination), { recursive: true });
    await cp(path.join(TEMPLATE_DIR, rel), destination);
    created.push(rel);
  }
  process.stdout.write(`Workspace ${path.resolve(target)}: ${created.length} created, ${skipped.length} skipped\n`);
  for (const rel of created) process.stdout.write(`  + ${rel}\n`);
  for (const rel of skipped) process.stdout.write(`  = ${rel} (exists)\n`);
  return { created, skipped };
}
