import { writeFile } from "node:fs/promises";
import { renderApiDoc } from "./api-doc.js";

// `pnpm api-doc`: regenerates docs/API.md.
const target = new URL("../../../docs/API.md", import.meta.url);
await writeFile(target, await renderApiDoc());
process.stdout.write(`wrote ${target.pathname}\n`);
