// ajv and yaml, loaded with require() so that NODE_PATH works too (ESM imports ignore it), and a
// message that says what to install when they are missing.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function load(name) {
  try {
    return require(name);
  } catch (error) {
    if (error.code !== "MODULE_NOT_FOUND") throw error;
    console.error(`check-chart: cannot load "${name}"; run pnpm install (it is a root devDependency).`);
    process.exit(2);
  }
}

export const Ajv = load("ajv").default;
export const YAML = load("yaml");
