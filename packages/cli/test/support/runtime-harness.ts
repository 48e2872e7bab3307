import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createMissionControlLite, type MissionControlLite } from "@clasper/control-plane";
import { startStubProvider, type StubProtocol, type StubProvider } from "@clasper/testkit";
import { startOneProcess, type TestSystem } from "./system.js";

export const AGENT_SECRET = "runtime-test-agent-secret-0123456789abcdef";

/** The models each wire protocol is exercised with (priced in pi-ai's registry, so costs are real). */
export const PROTOCOL_ENV: Record<StubProtocol, (stub: StubProvider) => Record<string, string>> = {
  "openai-completions": (stub) => ({ LLM_PROVIDER: "openai", LLM_API: "openai-completions", LLM_MODEL_DEFAULT: "gpt-4o-mini", LLM_BASE_URL: `${stub.url}/v1` }),
  "openai-responses": (stub) => ({ LLM_PROVIDER: "openai", LLM_API: "openai-responses", LLM_MODEL_DEFAULT: "gpt-4o-mini", LLM_BASE_URL: `${stub.url}/v1` }),
  "anthropic-messages": (stub) => ({ LLM_PROVIDER: "anthropic", LLM_API: "anthropic-messages", LLM_MODEL_DEFAULT: "claude-haiku-4-5", LLM_BASE_URL: stub.url }),
};

export interface RuntimeHarness {
  readonly sys: TestSystem;
  readonly stub: StubProvider;
  readonly backend: MissionControlLite;
  readonly workspaceDir: string;
  /** A caller token for `tenant` (admin unless told). */
  token(tenant: string, claims?: Record<string, unknown>): Promise<string>;
  /** The stored trace once its invoke_agent span arrived (span delivery batches for ~1 s). */
  trace(token: string, traceId: string, timeoutMs?: number): Promise<any>;
  /** Audit entries of the tenant, newest first. */
  audit(token: string): Promise<any[]>;
  stop(): Promise<void>;
}

/** A skill allowing the contract tools and the backend's `echo` (not `lookup_customer`). */
const SKILL = `---
name: ops
description: Track work in the user's backend.
version: 1.2.0
permissions:
  tools: [list_tasks, create_task, post_message, create_document, echo]
---

Use the tools to track work.
`;

export async function startRuntimeHarness(options: { protocol?: StubProtocol; env?: Record<string, string>; latencyMs?: number } = {}): Promise<RuntimeHarness> {
  const stub = await startStubProvider({ defaultLatencyMs: options.latencyMs ?? 0 });
  const backend = await createMissionControlLite({ agentSecret: AGENT_SECRET });
  const workspaceDir = await mkdtemp(path.join(tmpdir(), "clasper-ws-"));
  await mkdir(path.join(workspaceDir, "skills", "ops"), { recursive: true });
  await writeFile(path.join(workspaceDir, "SOUL.md"), "You are the operations agent.\n");
  await writeFile(path.join(workspaceDir, "skills", "ops", "SKILL.md"), SKILL);
  const sys = await startOneProcess({
    ...PROTOCOL_ENV[options.protocol ?? "openai-completions"](stub),
    BACKEND_URL: backend.url,
    AGENT_JWT_SECRET: AGENT_SECRET,
    CLASPER_WORKSPACE: workspaceDir,
    CLASPER_RETRY_BASE_DELAY_MS: "5",
    CLASPER_WEBHOOK_ALLOW_PRIVATE: "true",
    ...options.env,
  });
  return {
    sys,
    stub,
    backend,
    workspaceDir,
    token: (tenant, claims = {}) => sys.token({ tenant_id: tenant, user_id: "caller", roles: ["admin"], ...claims }),
    async trace(token, traceId, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const res = await sys.call("GET", `/traces/${traceId}`, { token });
        if (res.status === 200 && res.body.trace.status !== "running") return res.body.trace;
        if (Date.now() > deadline) throw new Error(`trace ${traceId} not complete: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
        await sleep(200);
      }
    },
    async audit(token) {
      const res = await sys.call("GET", "/audit?limit=200", { token });
      if (res.status !== 200) throw new Error(`GET /audit: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.entries;
    },
    async stop() {
      await sys.stop();
      await backend.close();
      await stub.close();
      await rm(workspaceDir, { recursive: true, force: true });
    },
  };
}

/** Parses an SSE body into `{event, data}` frames. */
export function sseFrames(text: string): { event: string; data: any }[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "";
      const data = /^data: (.*)$/m.exec(block)?.[1];
      return { event, data: data ? JSON.parse(data) : undefined };
    });
}
