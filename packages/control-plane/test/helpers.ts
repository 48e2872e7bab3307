import { mintAgentToken } from "@clasper/auth";
import { expect } from "vitest";
import { ControlPlaneError, createControlPlaneClient, createMissionControlLite, type ControlPlaneClient, type MissionControlLite, type MissionControlLiteOptions } from "../src/index.js";

export const SECRET = "test-secret-that-is-at-least-32-bytes-long!";

export function startLite(options: Partial<MissionControlLiteOptions> = {}): Promise<MissionControlLite> {
  return createMissionControlLite({ agentSecret: SECRET, ...options });
}

export function tokenFor(userId: string, agentRole = "jarvis", tenantId = "tenant-1"): () => Promise<string> {
  return () => mintAgentToken({ secret: SECRET, tenantId, userId, agentRole });
}

export function clientFor(lite: MissionControlLite, userId: string, timeoutMs?: number): ControlPlaneClient {
  return createControlPlaneClient({ baseUrl: lite.url, token: tokenFor(userId), ...(timeoutMs ? { timeoutMs } : {}) });
}

/** Waits until `check` holds (the server finishes work the client already gave up on). */
export async function eventually(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The ControlPlaneError `promise` rejects with (fails the test if it resolves or rejects otherwise). */
export async function failure(promise: Promise<unknown>): Promise<ControlPlaneError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ControlPlaneError);
  return err as ControlPlaneError;
}
