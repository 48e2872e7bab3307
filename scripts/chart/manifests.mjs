// Structural checks of a rendered example: the parts of the chart's promises that a schema of
// Kubernetes objects cannot see (labels, selectors, hardening, probes, secrets, peer wiring,
// egress to the URLs a pod is given, Ingress backends that exist and may be reached).
import { readFileSync } from "node:fs";
import { YAML } from "./deps.mjs";
import { schemaFile } from "./layout.mjs";

const COMMON_LABELS = [
  "app.kubernetes.io/name",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/version",
  "app.kubernetes.io/managed-by",
  "app.kubernetes.io/part-of",
  "helm.sh/chart",
];
const COMPONENT_LABEL = "app.kubernetes.io/component";
const VERSION_LABEL = "app.kubernetes.io/version";
// Objects that belong to one component carry its label.
const PER_COMPONENT_KINDS = new Set(["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job", "Ingress"]);
// The Connect services (packages/service-kit/src/names.ts); the gateway needs a URL for each.
const SERVICES = ["runtime", "trace", "governance", "registry", "workspace"];
// What `helm install/upgrade` waits for hooks without --timeout.
const HELM_DEFAULT_TIMEOUT_SECONDS = 300;
// Variables whose values are secrets: they may only come from a Secret. The schema refuses
// them in `env` by the same pattern.
const SECRET_VARS = new RegExp(JSON.parse(readFileSync(schemaFile, "utf8")).definitions.secretVariable.pattern);
// Variables a process refuses to be given together: when the first has a plain value, the
// second must not be read at all (the gateway exits on a JWT secret next to a JWKS URL).
const EXCLUSIVE_VARS = [["CLASPER_AUTH_JWKS_URL", "CLASPER_AUTH_JWT_SECRET"]];

/** Parses a multi-document YAML text into objects; throws on a syntax error. */
export function parseManifests(text) {
  return YAML.parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(doc.errors[0].message);
      return doc.toJS();
    })
    .filter((obj) => obj !== null);
}

/** Every problem found in one example's objects, as strings (empty when it is sound). */
export function manifestProblems(objects) {
  const problems = [];
  const services = new Map();
  for (const obj of objects) {
    const where = `${obj?.kind ?? "?"}/${obj?.metadata?.name ?? "?"}`;
    const fail = (message) => problems.push(`${where}: ${message}`);
    if (typeof obj?.apiVersion !== "string" || typeof obj?.kind !== "string" || typeof obj?.metadata?.name !== "string") {
      fail("lacks apiVersion, kind or metadata.name");
      continue;
    }
    const labels = obj.metadata.labels ?? {};
    for (const label of COMMON_LABELS) if (!labels[label]) fail(`lacks label ${label}`);
    if (PER_COMPONENT_KINDS.has(obj.kind) && !labels[COMPONENT_LABEL]) fail(`lacks label ${COMPONENT_LABEL}`);
    if (obj.kind === "Secret") fail("the chart must not create Secrets (existingSecret only)");
    for (const [path, selector] of selectorsOf(obj)) {
      if (selector && VERSION_LABEL in selector) fail(`${path} includes ${VERSION_LABEL}`);
    }
    if (obj.kind === "Service") services.set(obj.metadata.name, obj.spec?.ports?.map((p) => p.port) ?? []);
    if (obj.kind === "Deployment") checkDeployment(obj, fail);
    if (obj.kind === "Job") checkJob(obj, fail);
  }
  // A peer deployed in the release is reached at its Service, on its port; a peer that is not
  // is reached at its externalUrl, which only the reachability check below can judge.
  const deployments = objects.filter((o) => o?.kind === "Deployment");
  const deployed = new Set(deployments.map((o) => o.metadata.labels?.[COMPONENT_LABEL]));
  for (const obj of deployments) {
    const envs = containersOf(obj).flatMap((c) => c.env ?? []);
    for (const env of envs) {
      const name = /^CLASPER_([A-Z]+)_URL$/.exec(env.name)?.[1]?.toLowerCase();
      if (!name || !SERVICES.includes(name) || !deployed.has(name)) continue;
      const peer = /^http:\/\/([^:/]+):(\d+)$/.exec(env.value ?? "");
      if (!peer || !services.get(peer[1])?.includes(Number(peer[2]))) {
        problems.push(`Deployment/${obj.metadata.name}: ${env.name}=${env.value} matches no Service port`);
      }
    }
    // services/gateway/src/main.ts refuses to start without every service's URL.
    if (obj.metadata.labels?.[COMPONENT_LABEL] === "gateway") {
      for (const name of SERVICES) {
        const variable = `CLASPER_${name.toUpperCase()}_URL`;
        if (!envs.some((e) => e.name === variable && e.value)) problems.push(`Deployment/${obj.metadata.name}: no ${variable}`);
      }
    }
  }
  problems.push(...unreachableUrls(objects), ...unreachableBackends(objects));
  return problems;
}

/** NetworkPolicies among `objects` that select a pod with these labels. */
function policiesSelecting(objects, podLabels) {
  return objects.filter((o) => o?.kind === "NetworkPolicy"
    && Object.entries(o.spec?.podSelector?.matchLabels ?? {}).every(([k, v]) => podLabels[k] === v));
}

const allowsPort = (rule, port) => !rule.ports || rule.ports.some((p) => (p.protocol ?? "TCP") === "TCP" && p.port === port);

/**
 * Every Ingress backend is a Service of the release with that port, and when NetworkPolicies
 * select its pods, one of their ingress rules admits traffic from outside the release's pods (no
 * `from`, or a namespaceSelector or ipBlock: the ingress controller) on the container's port.
 */
function unreachableBackends(objects) {
  const problems = [];
  for (const ingress of objects.filter((o) => o?.kind === "Ingress")) {
    const where = `Ingress/${ingress.metadata.name}`;
    const backends = (ingress.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []).map((p) => p.backend?.service);
    for (const backend of backends) {
      const service = objects.find((o) => o?.kind === "Service" && o.metadata.name === backend?.name);
      const port = service?.spec?.ports?.find((p) => p.name === backend?.port?.name || p.port === backend?.port?.number);
      if (!port) {
        problems.push(`${where}: backend ${backend?.name}:${backend?.port?.name ?? backend?.port?.number} is no Service port of the release`);
        continue;
      }
      const pods = objects.filter((o) => o?.kind === "Deployment"
        && Object.entries(service.spec.selector ?? {}).every(([k, v]) => o.spec?.template?.metadata?.labels?.[k] === v));
      for (const deployment of pods) {
        const containerPort = containersOf(deployment).flatMap((c) => c.ports ?? []).find((p) => p.name === port.targetPort || p.containerPort === port.targetPort)?.containerPort;
        const selecting = policiesSelecting(objects, deployment.spec.template.metadata.labels);
        if (!selecting.some((p) => (p.spec?.policyTypes ?? []).includes("Ingress"))) continue;
        const admitted = selecting.flatMap((p) => p.spec?.ingress ?? []).some((r) =>
          allowsPort(r, containerPort) && (!r.from || r.from.some((peer) => peer.namespaceSelector || peer.ipBlock)));
        if (!admitted) problems.push(`${where}: NetworkPolicies admit no traffic from outside the release to Deployment/${deployment.metadata.name} port ${containerPort}`);
      }
    }
  }
  return problems;
}

/**
 * A URL given to a container in plain `env` (a peer, the JWKS, the backend, the collector) must
 * be reachable under the NetworkPolicies that select its pod: some egress rule of theirs allows
 * TCP to the URL's port. Only ports are compared; `to` is a matter of addresses the render
 * cannot resolve.
 */
function unreachableUrls(objects) {
  const problems = [];
  for (const obj of objects.filter((o) => o?.kind === "Deployment")) {
    const selecting = policiesSelecting(objects, obj.spec?.template?.metadata?.labels ?? {});
    if (!selecting.some((p) => (p.spec?.policyTypes ?? []).includes("Egress"))) continue;
    const rules = selecting.flatMap((p) => p.spec?.egress ?? []);
    for (const env of containersOf(obj).flatMap((c) => c.env ?? [])) {
      const port = urlPort(env.value);
      if (port === undefined) continue;
      const allowed = rules.some((r) => allowsPort(r, port));
      if (!allowed) problems.push(`Deployment/${obj.metadata.name}: ${env.name}=${env.value} is blocked: no egress rule allows TCP ${port}`);
    }
  }
  return problems;
}

/** The TCP port an http(s) URL is reached at; undefined for anything else. */
function urlPort(value) {
  if (typeof value !== "string" || !/^https?:\/\//.test(value)) return undefined;
  const url = new URL(value);
  return Number(url.port || (url.protocol === "https:" ? 443 : 80));
}

function selectorsOf(obj) {
  const spec = obj.spec ?? {};
  const pod = podSpecOf(obj);
  return [
    ["spec.selector.matchLabels", spec.selector?.matchLabels],
    ["spec.selector", obj.kind === "Service" ? spec.selector : undefined],
    ["spec.podSelector.matchLabels", spec.podSelector?.matchLabels],
    ...(pod?.topologySpreadConstraints ?? []).map((t, i) => [`topologySpreadConstraints[${i}]`, t.labelSelector?.matchLabels]),
  ];
}

const podSpecOf = (obj) => obj.spec?.template?.spec;
const containersOf = (obj) => podSpecOf(obj)?.containers ?? [];

function checkDeployment(obj, fail) {
  const selector = obj.spec?.selector?.matchLabels ?? {};
  const podLabels = obj.spec?.template?.metadata?.labels ?? {};
  for (const [key, value] of Object.entries(selector)) {
    if (podLabels[key] !== value) fail(`selector ${key}=${value} does not match the pod labels`);
  }
  checkPod(obj, fail);
  const component = obj.metadata.labels?.[COMPONENT_LABEL];
  const grace = podSpecOf(obj)?.terminationGracePeriodSeconds ?? 30;
  for (const c of containersOf(obj)) {
    // The grace period runs from the preStop hook on: sleep, drain, then flush and close.
    const preStop = c.lifecycle?.preStop?.exec?.command;
    const sleep = preStop?.[0] === "sleep" ? Number(preStop[1]) : 0;
    if (!(sleep > 0)) fail(`container ${c.name}: no preStop sleep, so a rollout refuses connections routed before the endpoints update`);
    const drain = Number((c.env ?? []).find((e) => e.name === "CLASPER_SHUTDOWN_TIMEOUT_MS")?.value) / 1000;
    if (!(grace > sleep + drain)) fail(`container ${c.name}: terminationGracePeriodSeconds ${grace} is not above preStop ${sleep} s + shutdown ${drain} s`);
    if (c.command) fail(`container ${c.name}: sets command; the image's entrypoint is the clasper CLI (Dockerfile)`);
    if (c.args?.join(" ") !== `serve --service ${component}`) fail(`container ${c.name}: args are not "serve --service ${component}"`);
    if (c.livenessProbe?.httpGet?.path !== "/healthz") fail(`container ${c.name}: liveness probe is not GET /healthz`);
    if (c.readinessProbe?.httpGet?.path !== "/readyz") fail(`container ${c.name}: readiness probe is not GET /readyz`);
  }
}

function checkJob(obj, fail) {
  const annotations = obj.metadata.annotations ?? {};
  const hooks = (annotations["helm.sh/hook"] ?? "").split(",");
  if (!hooks.includes("pre-install") || !hooks.includes("pre-upgrade")) fail("is not a pre-install,pre-upgrade hook");
  if (!annotations["helm.sh/hook-delete-policy"]) fail("has no helm.sh/hook-delete-policy");
  // Helm gives up on a hook after --timeout (5 min by default) and leaves the Job running, so
  // the Job must stop first for the release to fail with the Job's own reason.
  const deadline = obj.spec?.activeDeadlineSeconds;
  if (!(deadline < HELM_DEFAULT_TIMEOUT_SECONDS)) fail(`activeDeadlineSeconds ${deadline} is not below helm's default --timeout (${HELM_DEFAULT_TIMEOUT_SECONDS} s)`);
  for (const c of containersOf(obj)) if (c.command || c.args?.join(" ") !== "migrate") fail(`container ${c.name}: is not the CLI's "migrate"`);
  checkPod(obj, fail);
}

/** The hardening every pod of the chart has. */
function checkPod(obj, fail) {
  const pod = podSpecOf(obj) ?? {};
  const podSec = pod.securityContext ?? {};
  if (pod.automountServiceAccountToken !== false) fail("mounts the ServiceAccount token");
  if (podSec.runAsNonRoot !== true) fail("pod securityContext.runAsNonRoot is not true");
  for (const c of pod.containers ?? []) {
    const at = `container ${c.name}`;
    const sec = c.securityContext ?? {};
    if (sec.runAsNonRoot !== true && podSec.runAsNonRoot !== true) fail(`${at}: may run as root`);
    if (sec.readOnlyRootFilesystem !== true) fail(`${at}: root filesystem is writable`);
    if (sec.allowPrivilegeEscalation !== false) fail(`${at}: allowPrivilegeEscalation is not false`);
    if (!(sec.capabilities?.drop ?? []).includes("ALL")) fail(`${at}: does not drop ALL capabilities`);
    const seccomp = sec.seccompProfile?.type ?? podSec.seccompProfile?.type;
    if (seccomp !== "RuntimeDefault") fail(`${at}: seccomp profile is not RuntimeDefault`);
    for (const kind of ["requests", "limits"]) {
      for (const resource of ["cpu", "memory"]) {
        if (c.resources?.[kind]?.[resource] === undefined) fail(`${at}: no ${resource} ${kind}`);
      }
    }
    checkMounts(pod, c, (message) => fail(`${at}: ${message}`));
    checkEnv(c, (message) => fail(`${at}: ${message}`));
  }
}

/** A writable /tmp and nothing else writable where it matters; every mount has its volume. */
function checkMounts(pod, c, fail) {
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  const mounts = c.volumeMounts ?? [];
  for (const m of mounts) if (!volumes.has(m.name)) fail(`mounts ${m.name}, which is no volume of the pod`);
  if (!mounts.some((m) => m.mountPath === "/tmp" && volumes.get(m.name)?.emptyDir)) fail("no emptyDir at /tmp");
  // The workspace service serves CLASPER_WORKSPACE to tenants' prompts; nothing in the pod
  // may change it, so it must lie in a read-only mount (or in the read-only image).
  const workspace = (c.env ?? []).find((e) => e.name === "CLASPER_WORKSPACE")?.value;
  if (workspace && !mounts.some((m) => m.readOnly === true && isWithin(workspace, m.mountPath))) {
    fail(`CLASPER_WORKSPACE=${workspace} is not in a read-only volume mount`);
  }
}

/** Secrets only from the Secret, and never two variables the process refuses together. */
function checkEnv(c, fail) {
  const env = c.env ?? [];
  for (const e of env) {
    if (SECRET_VARS.test(e.name) && !e.valueFrom?.secretKeyRef) fail(`${e.name} is not read from a Secret`);
  }
  for (const [set, refused] of EXCLUSIVE_VARS) {
    if (env.some((e) => e.name === set && e.value) && env.some((e) => e.name === refused)) fail(`${set} is set, so ${refused} must not be`);
  }
}

const isWithin = (path, dir) => path === dir || path.startsWith(`${dir.replace(/\/$/, "")}/`);
