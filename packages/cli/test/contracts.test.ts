import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { buildOpenApi, restRoutes, CLASPER_VERSION } from "@clasper/gateway";
import { SERVICE_DESCRIPTORS, SERVICE_NAMES } from "@clasper/service-kit";
import { renderApiDoc } from "../src/index.js";

const routes = restRoutes(SERVICE_NAMES.map((name) => SERVICE_DESCRIPTORS[name]));
const routeKeys = new Set(routes.map((r) => `${r.verb} ${r.template.replace(/\{([a-z_]+)\}/g, ":$1")}`));

// Every endpoint in the API tables of the product README (seed/clasper-ops-README.md), with the
// documented method. Path parameter names are normalised to :param.
const DOCUMENTED = [
  "POST /api/agents/send", "POST /api/agents/stream", "POST /compact", "POST /llm-task",
  "GET /traces", "GET /traces/:trace_id", "GET /traces/:trace_id/replay", "GET /traces/stats", "POST /traces/diff",
  "POST /traces/:trace_id/label", "POST /traces/:trace_id/annotate", "GET /traces/by-label", "GET /traces/by-entity",
  "POST /skills/publish", "GET /skills/registry/:name", "GET /skills/registry/:name/versions", "POST /skills/registry/:name/test",
  "GET /skills", "POST /skills/:name/:version/promote", "GET /skills/:name/:version/state", "GET /skills/by-state",
  "GET /audit", "GET /audit/stats", "GET /ops/api/audit", "GET /budget", "POST /budget", "POST /budget/check",
  "POST /cost/forecast", "POST /risk/score",
  "POST /retention/policy", "GET /retention/policy", "POST /retention/enforce", "GET /retention/stats",
  "POST /workspace/pin", "GET /workspace/pin", "GET /workspace/:workspace_id/pins", "POST /workspace/envs", "GET /workspace/envs",
  "POST /workspace/envs/promote", "POST /workspace/envs/init", "POST /workspace/impact",
  "POST /evals/run", "GET /evals/:eval_id", "GET /evals",
  // The ops console API (spec §2.9) that the console needs.
  "GET /ops/api/me", "GET /ops/api/traces", "GET /ops/api/traces/:trace_id", "POST /ops/api/traces/diff",
  "POST /ops/api/workspaces/:workspace_id/promotions/check", "POST /ops/api/workspaces/:workspace_id/promotions/execute",
  "GET /ops/api/workspaces/:workspace_id/versions", "POST /ops/api/workspaces/:workspace_id/rollback",
  "GET /ops/api/skills/registry", "POST /ops/api/skills/:name/:version/promote",
  "GET /ops/api/dashboards/cost", "GET /ops/api/dashboards/risk", "GET /ops/api/audit-chain/export",
  "GET /ops/api/policies", "POST /ops/api/policies", "PATCH /ops/api/policies/:policy_id", "DELETE /ops/api/policies/:policy_id",
  "GET /ops/api/decisions", "POST /api/decisions/:decision_id/resolve", "POST /api/policy/dry-run",
];

describe("contracts and the REST surface", () => {
  it("has a route for every documented endpoint", () => {
    expect(DOCUMENTED.filter((endpoint) => !routeKeys.has(endpoint))).toEqual([]);
  });

  it("describes every annotated route in the OpenAPI document, with its parameters", () => {
    const doc = buildOpenApi(routes, CLASPER_VERSION) as { paths: Record<string, Record<string, { parameters: { name: string; in: string }[] }>> };
    for (const route of routes) {
      const operation = doc.paths[route.template]?.[route.verb.toLowerCase()];
      expect(operation, `${route.verb} ${route.template}`).toBeDefined();
      const pathParams = operation!.parameters.filter((p) => p.in === "path").map((p) => p.name);
      expect(pathParams).toEqual(route.pathFields);
    }
    const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item));
    expect(operations).toHaveLength(routes.length);
  });

  it("never lets a request carry the tenant", () => {
    const offenders = routes.filter((r) => r.method.input.fields.some((f) => f.name === "tenant_id")).map((r) => r.method.name);
    expect(offenders).toEqual([]);
  });

  it("keeps docs/API.md in step with the contracts and the handlers (run `pnpm api-doc`)", async () => {
    const committed = await readFile(new URL("../../../docs/API.md", import.meta.url), "utf8");
    expect(committed).toBe(await renderApiDoc());
  });
});
