#!/usr/bin/env node
// Checks the Helm chart in charts/clasper:
//   - values.schema.json compiles and declares additionalProperties on every object;
//   - values.yaml, and values.yaml merged with each ci/*.yaml as Helm merges them, match it;
//   - every key of values.yaml has a comment;
//   - every committed example (examples/<name>.yaml, one per ci file) parses and keeps the
//     chart's promises: labels, version-free selectors, hardened pods, probes, secrets, peers;
//   - when `helm` is on PATH: each example equals a fresh `helm template` (no drift) and
//     `helm lint --strict` passes; when `kubeconform` is on PATH and the schemas prepared by
//     scripts/chart/kube-schemas.mjs exist: the examples validate against Kubernetes' schemas.
//
//   node scripts/check-chart.mjs           check
//   node scripts/check-chart.mjs --write   re-render the examples with helm, then check
//
// Prints the problems, then one line "check-chart: N passed, N failed, N skipped"; exits 1 on
// any failure.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { Ajv, YAML } from "./chart/deps.mjs";
import { defaultSchemaDir } from "./chart/kube-schemas.mjs";
import {
  ciFiles, examplesDir, exampleFor, helmLintArgs, helmTemplateArgs, repoRoot, schemaFile, valuesFile,
} from "./chart/layout.mjs";
import { manifestProblems, parseManifests } from "./chart/manifests.mjs";
import { coalesce, schemaOpenings, uncommentedKeys } from "./chart/values.mjs";

const write = process.argv.includes("--write");
const results = { passed: 0, failed: 0, skipped: 0 };

function check(name, run) {
  let problems;
  try {
    problems = run();
  } catch (error) {
    problems = [error.message];
  }
  if (problems === null) {
    results.skipped += 1;
    return;
  }
  if (problems.length === 0) {
    results.passed += 1;
    return;
  }
  results.failed += 1;
  console.error(`FAIL ${name}`);
  for (const problem of problems.slice(0, 20)) console.error(`  ${problem}`);
  if (problems.length > 20) console.error(`  … and ${problems.length - 20} more`);
}

const rel = (path) => relative(repoRoot, path);
const readYaml = (path) => YAML.parse(readFileSync(path, "utf8")) ?? {};

function onPath(command, versionArgs) {
  try {
    execFileSync(command, versionArgs, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function run(command, args) {
  return execFileSync(command, args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
}

// A failed command's own words are the useful part of the report.
function commandProblems(command, args) {
  try {
    run(command, args);
    return [];
  } catch (error) {
    return [`${command} ${args.join(" ")}`, ...`${error.stdout ?? ""}${error.stderr ?? ""}`.trim().split("\n")];
  }
}

// --- values -------------------------------------------------------------------------------
const schema = JSON.parse(readFileSync(schemaFile, "utf8"));
const validate = new Ajv({ allErrors: true, strictTypes: false }).compile(schema);
const schemaErrors = () => (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}${e.params?.additionalProperty ? `: ${e.params.additionalProperty}` : ""}`);
const values = readYaml(valuesFile);

check("values.schema.json declares additionalProperties on every object", () => schemaOpenings(schema));
check("values.yaml matches the schema", () => (validate(values) ? [] : schemaErrors()));
check("every key of values.yaml is commented", () => uncommentedKeys(readFileSync(valuesFile, "utf8")).map((k) => `${k}: no comment`));
for (const ci of ciFiles()) {
  check(`${rel(ci)} merged over values.yaml matches the schema`, () => (validate(coalesce(values, readYaml(ci))) ? [] : schemaErrors()));
}
// Values the schema must refuse, each merged over values.yaml on its own.
const REFUSED = {
  "an unknown key": { default: { replica: 1 } },
  "a secret in plain env": { components: { gateway: { env: { CLASPER_AUTH_JWT_SECRET: "x".repeat(32) } } } },
  "a provider key in plain env": { default: { env: { OPENAI_API_KEY: "sk-x" } } },
  "a secret as a plain extraEnv value": { components: { trace: { extraEnv: [{ name: "DATABASE_URL", value: "postgres://u:p@db/x" }] } } },
  "a writable root filesystem": { default: { securityContext: { readOnlyRootFilesystem: false } } },
  "a workspace from both a ConfigMap and a claim": { components: { workspace: { workspaceVolume: { configMap: "a", claimName: "b" } } } },
};
for (const [what, overlay] of Object.entries(REFUSED)) {
  check(`the schema refuses ${what}`, () => (validate(coalesce(values, overlay)) ? [`accepted: ${JSON.stringify(overlay)}`] : []));
}

// --- examples -------------------------------------------------------------------------------
const helm = onPath("helm", ["version"]);
if (write && !helm) {
  console.error("check-chart: --write needs helm on PATH");
  process.exit(2);
}
if (write) for (const ci of ciFiles()) writeFileSync(exampleFor(ci), run("helm", helmTemplateArgs(ci)));
const expected = new Set(ciFiles().map(exampleFor));
check("one example per ci values file", () => [
  ...[...expected].filter((e) => !existsSync(e)).map((e) => `${rel(e)} is missing (render it: node scripts/check-chart.mjs --write)`),
  ...readdirSync(examplesDir).map((f) => join(examplesDir, f)).filter((f) => !expected.has(f)).map((f) => `${rel(f)} has no ci values file`),
]);
for (const ci of ciFiles()) {
  const example = exampleFor(ci);
  if (helm) {
    const rendered = run("helm", helmTemplateArgs(ci));
    check(`${rel(example)} equals helm template with ${basename(ci)}`, () =>
      existsSync(example) && readFileSync(example, "utf8") === rendered
        ? []
        : [`drift: run node scripts/check-chart.mjs --write (or: helm ${helmTemplateArgs(ci).join(" ")} > ${rel(example)})`]);
  } else {
    check(`${rel(example)} equals helm template`, () => null);
  }
  if (existsSync(example)) {
    check(`${rel(example)} is sound`, () => manifestProblems(parseManifests(readFileSync(example, "utf8"))));
  }
}

// --- helm lint and kubeconform, where installed -------------------------------------------------
check("helm lint --strict", () =>
  helm ? [undefined, ...ciFiles()].flatMap((ci) => commandProblems("helm", helmLintArgs(ci))) : null);

const kubeSchemas = process.env.CLASPER_KUBE_SCHEMAS ?? defaultSchemaDir();
const kubeconform = onPath("kubeconform", ["-v"]) && existsSync(join(kubeSchemas, "deployment-apps-v1.json"));
check("kubeconform -strict on the examples", () =>
  kubeconform
    ? commandProblems("kubeconform", [
      "-strict", "-summary", "-skip", "ServiceMonitor",
      "-schema-location", join(kubeSchemas, "{{.ResourceKind}}{{.KindSuffix}}.json"),
      ...[...expected].filter(existsSync),
    ])
    : null);

const tools = [helm ? null : "helm", kubeconform ? null : "kubeconform (or its schemas)"].filter(Boolean);
if (tools.length > 0) console.log(`check-chart: skipped what needs ${tools.join(" and ")} (see docs/DEPLOYMENT.md)`);
console.log(`check-chart: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`);
process.exit(results.failed > 0 ? 1 : 0);
