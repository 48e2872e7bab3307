#!/usr/bin/env node
// Prepares Kubernetes JSON schemas for kubeconform without reaching GitHub.
//
// kubeconform normally downloads schemas from github.com/yannh/kubernetes-json-schema. Where only
// package registries are reachable, the PyPI package `kubernetes-validate` ships the same schemas
// (one folder per Kubernetes minor). Its files are written for that tool's own resolver: each has
// an `$id` under https://kubernetes.io/api/ and refers to `/api/_definitions.json`, which
// kubeconform's file loader cannot follow. This script downloads the wheel with pip, extracts
// the chosen version and rewrites those references to the sibling file.
//
//   node scripts/chart/kube-schemas.mjs [--k8s 1.31.0] [--out DIR]
//
// Prints the directory; use it as
//   kubeconform -strict -skip ServiceMonitor \
//     -schema-location "DIR/{{.ResourceKind}}{{.KindSuffix}}.json" file.yaml
// scripts/check-chart.mjs runs kubeconform this way when the directory exists.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

export const KUBERNETES_VALIDATE = "kubernetes-validate==1.37.0";
export const DEFAULT_K8S_VERSION = "1.31.0";
export const defaultSchemaDir = (k8s = DEFAULT_K8S_VERSION) => join(tmpdir(), "clasper-kube-schemas", `v${k8s}`);

/** Rewrites one schema so that its references resolve next to it on disk. */
export function localizeSchema(text) {
  const schema = JSON.parse(text);
  delete schema.$id;
  return JSON.stringify(schema).replaceAll('"/api/_definitions.json#', '"_definitions.json#');
}

function download(k8s, out) {
  const work = mkdtempSync(join(tmpdir(), "kube-schemas-"));
  try {
    execFileSync("python3", ["-m", "pip", "download", "--quiet", "--no-deps", "--dest", work, KUBERNETES_VALIDATE], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    const wheel = readdirSync(work).find((f) => f.endsWith(".whl"));
    if (!wheel) throw new Error(`pip downloaded no wheel of ${KUBERNETES_VALIDATE}`);
    const extracted = join(work, "x");
    execFileSync("python3", ["-m", "zipfile", "-e", join(work, wheel), extracted]);
    const source = join(extracted, "kubernetes_validate", "kubernetes-json-schema", `v${k8s}-local-strict`);
    if (!existsSync(source)) throw new Error(`${KUBERNETES_VALIDATE} has no schemas for Kubernetes ${k8s}`);
    mkdirSync(out, { recursive: true });
    for (const file of readdirSync(source)) {
      writeFileSync(join(out, file), localizeSchema(readFileSync(join(source, file), "utf8")));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { k8s: { type: "string" }, out: { type: "string" } } });
  const k8s = values.k8s ?? DEFAULT_K8S_VERSION;
  const out = values.out ?? defaultSchemaDir(k8s);
  if (!existsSync(join(out, "deployment-apps-v1.json"))) download(k8s, out);
  console.log(out);
}
