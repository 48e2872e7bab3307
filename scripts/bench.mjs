#!/usr/bin/env node
// `pnpm bench <name>`: runs scripts/bench/<name>.mjs. Each benchmark measures its own baseline in
// the same run and prints figures as ratios against it, plus the command that produced them.
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "bench");
const available = readdirSync(dir).filter((f) => f.endsWith(".mjs") && !f.startsWith("_")).map((f) => f.replace(/\.mjs$/, ""));
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: pnpm bench <${available.join("|")}> [options]`);
  process.exit(2);
}
process.argv = [process.argv[0], path.join(dir, `${name}.mjs`), ...rest];
await import(path.join(dir, `${name}.mjs`));
