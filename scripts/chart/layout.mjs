// Where the chart's files are and how an example is rendered: one place for check-chart.mjs and
// for anyone regenerating examples by hand (the docs show the same command).
import { readdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const chartDir = join(repoRoot, "charts", "clasper");
export const valuesFile = join(chartDir, "values.yaml");
export const schemaFile = join(chartDir, "values.schema.json");
export const ciDir = join(chartDir, "ci");
export const examplesDir = join(chartDir, "examples");

// Examples are rendered as release "clasper" in namespace "clasper". The Kubernetes version is
// pinned because a helm built from source without release ldflags assumes v1.20.
export const RELEASE = "clasper";
export const NAMESPACE = "clasper";
export const KUBE_VERSION = "1.31.0";

/** The CI values files, as absolute paths, sorted. */
export function ciFiles() {
  return readdirSync(ciDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => join(ciDir, f));
}

/** ci/<name>-values.yaml (or ci/<name>.yaml) is rendered to examples/<name>.yaml. */
export function exampleFor(ciFile) {
  return join(examplesDir, `${basename(ciFile, ".yaml").replace(/-values$/, "")}.yaml`);
}

/** Arguments of `helm template` that render one example (paths relative to the repo root). */
export function helmTemplateArgs(ciFile) {
  return [
    "template", RELEASE, "charts/clasper",
    "--namespace", NAMESPACE,
    "--kube-version", KUBE_VERSION,
    "--values", `charts/clasper/ci/${basename(ciFile)}`,
  ];
}

/** Arguments of `helm lint --strict`, with the chart's defaults or with one values file. */
export function helmLintArgs(ciFile) {
  const args = ["lint", "--strict", "charts/clasper", "--kube-version", KUBE_VERSION];
  return ciFile ? [...args, "--values", `charts/clasper/ci/${basename(ciFile)}`] : args;
}
