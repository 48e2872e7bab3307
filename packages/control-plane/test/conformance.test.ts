import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformance, toJUnitXml, type MissionControlLite } from "../src/index.js";
import { startLite, tokenFor } from "./helpers.js";

let lite: MissionControlLite;
beforeAll(async () => {
  lite = await startLite();
});
afterAll(() => lite.close());

describe("conformance suite", () => {
  it("passes every check against mission-control-lite", async () => {
    const report = await runConformance({ baseUrl: lite.url, token: tokenFor("conformance") });
    expect(report.results.filter((r) => r.status === "failed")).toEqual([]);
    expect(report.passed).toBe(report.results.length);
    expect(report.results.map((r) => r.name)).toEqual(
      expect.arrayContaining(["capabilities endpoint", "create task with idempotency", "idempotency repeat create", "idempotency conflict", "list tasks", "post message", "post document", "rejects a forged X-Agent-Token"]),
    );
    // One task despite the repeat; the conflicting create was refused.
    expect(lite.state.tasksOf({ tenantId: "tenant-1", userId: "conformance" })).toHaveLength(1);
  });

  it("accepts a fixed token string", async () => {
    const report = await runConformance({ baseUrl: lite.url, token: await tokenFor("fixed")() });
    expect(report.failed).toBe(0);
  });

  it("fails a backend that skips token checks and idempotency", async () => {
    const naive = await startNaiveBackend();
    try {
      const report = await runConformance({ baseUrl: naive.url, token: tokenFor("x") });
      const failed = report.results.filter((r) => r.status === "failed").map((r) => r.name);
      expect(failed).toEqual(
        expect.arrayContaining([
          "rejects a request without X-Agent-Token",
          "rejects a forged X-Agent-Token",
          "idempotency repeat create",
          "idempotency conflict",
          "post message idempotency repeat",
        ]),
      );
      expect(failed).not.toContain("capabilities endpoint");
      expect(failed).not.toContain("create task with idempotency");
      const xml = toJUnitXml(report);
      expect(xml).toContain(`failures="${report.failed}"`);
      expect(xml).toMatch(/<failure message="expected 401, got 200"\/>/);
    } finally {
      await naive.close();
    }
  });

  it("fails every dependent check with the reason when the task cannot be created", async () => {
    lite.failNext("POST /api/mission-control/tasks", { status: 500 }, 3);
    const report = await runConformance({ baseUrl: lite.url, token: tokenFor("broken") });
    const byName = Object.fromEntries(report.results.map((r) => [r.name, r]));
    expect(byName["create task with idempotency"]).toMatchObject({ status: "failed", error: "Failed to create task: 500 injected fault" });
    expect(byName["post message"]).toMatchObject({ status: "failed", error: "taskId not set (create task failed)" });
    expect(byName["capabilities endpoint"]!.status).toBe("passed");
  });
});

/** A backend that answers the happy path only: no auth, no idempotency. */
async function startNaiveBackend(): Promise<{ url: string; close(): Promise<void> }> {
  let n = 0;
  const tasks: { id: string; title: string; status: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      const input = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      const path = (req.url ?? "").split("?")[0];
      if (path === "/api/mission-control/capabilities") return json(200, { contract_version: "v1", features: {} });
      if (path === "/api/mission-control/tasks" && req.method === "GET") return json(200, { items: tasks });
      if (req.method === "POST" && !input["title"] && path === "/api/mission-control/tasks") return json(400, { error: "title required" });
      if (req.method === "POST") {
        const item = { id: `id-${++n}`, title: String(input["title"] ?? ""), status: "in_progress", task_id: input["task_id"] };
        if (path === "/api/mission-control/tasks") tasks.push(item);
        return json(200, item);
      }
      json(404, { error: "not found" });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}
