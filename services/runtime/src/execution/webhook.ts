import { createHmac } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { Webhook } from "@clasper/proto";

export const SIGNATURE_HEADER = "X-Clasper-Signature";

/** `sha256=<hex HMAC-SHA256(secret, body)>`; a receiver recomputes it over the raw body. */
export function signWebhook(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

const PRIVATE_HOST = /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|0\.|\[::1\]|\[f[cd])/i;

/** Loopback and private literal hosts, refused unless CLASPER_WEBHOOK_ALLOW_PRIVATE is set. */
export function isPrivateTarget(url: string): boolean {
  try {
    return PRIVATE_HOST.test(new URL(url).hostname) || new URL(url).hostname === "[::1]";
  } catch {
    return true;
  }
}

/**
 * Fire-and-forget completion callback: JSON body, custom headers, the signature when a secret is
 * set; each attempt bounded by `timeoutMs`, 3 attempts with backoff; failures are only logged.
 */
export function fireWebhook(webhook: Webhook, payload: Record<string, unknown>, options: { timeoutMs: number; allowPrivate: boolean; logger: Logger }): void {
  if (!options.allowPrivate && isPrivateTarget(webhook.url)) {
    options.logger.warn({ event: payload["event"] }, "webhook to a private or loopback address refused");
    return;
  }
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { ...webhook.headers, "content-type": "application/json", "user-agent": "Clasper-Webhook/1.0" };
  if (webhook.secret) headers[SIGNATURE_HEADER] = signWebhook(webhook.secret, body);
  void (async () => {
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      try {
        const res = await fetch(webhook.url, { method: "POST", headers, body, signal: AbortSignal.timeout(options.timeoutMs) });
        await res.arrayBuffer();
        if (res.ok || (res.status >= 400 && res.status < 500 && res.status !== 429)) return;
      } catch (err) {
        if (attempt === 3) options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "webhook delivery failed");
      }
      await sleep(500 * 2 ** (attempt - 1));
    }
  })();
}
