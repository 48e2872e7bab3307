import { createHmac } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import ipaddr from "ipaddr.js";
import type { Logger } from "pino";
import type { Webhook } from "@clasper/proto";

export const SIGNATURE_HEADER = "X-Clasper-Signature";

/** `sha256=<hex HMAC-SHA256(secret, body)>`; a receiver recomputes it over the raw body. */
export function signWebhook(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Only globally routable unicast addresses. Loopback, private (RFC 1918), link-local (cloud metadata
 * at 169.254.169.254), unique-local, carrier-grade NAT, unspecified, multicast, broadcast, reserved,
 * and the IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo, NAT64) are all refused: an
 * embedded address is classified as itself first, and a tunnel form could hide a private one.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  return ipaddr.process(address).range() === "unicast";
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request that resolves as usual but fails when ANY address of the name is not
 * public. Why here and not before the request: the check then applies to the very addresses the
 * socket connects to, so a name that answers a public address to a pre-check and a private one to
 * the connection (DNS rebinding) is still refused.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const refused = addresses.find((entry) => !isPublicAddress(entry.address));
    if (refused || addresses.length === 0) {
      const error: NodeJS.ErrnoException = new Error(`webhook host ${hostname} resolves to a non-public address${refused ? ` (${refused.address})` : ""}`);
      error.code = "ERR_WEBHOOK_PRIVATE_ADDRESS";
      return callback(error, []);
    }
    if (options.all) return callback(null, addresses);
    const [first] = addresses as [LookupAddress];
    callback(null, first.address, first.family);
  });
}

/**
 * Whether `url` is refused before any connection: not http(s), credentials in the URL, or an IP
 * literal that is not public. Host names are checked when they resolve (publicOnlyLookup).
 */
export function isPrivateTarget(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return true;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return true;
  const host = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname;
  return isIP(host) !== 0 && !isPublicAddress(host);
}

/**
 * One POST; resolves with the status code. Redirects are not followed (a public endpoint answering
 * 307 to an internal address would otherwise be a way in), and with `allowPrivate` unset every
 * resolved address must be public.
 */
function postOnce(url: URL, headers: Record<string, string>, body: string, timeoutMs: number, allowPrivate: boolean): Promise<number> {
  const transport = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      url,
      {
        method: "POST",
        headers: { ...headers, "content-length": Buffer.byteLength(body).toString() },
        timeout: timeoutMs,
        ...(allowPrivate ? {} : { lookup: publicOnlyLookup }),
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`webhook timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * Fire-and-forget completion callback: JSON body, custom headers, the signature when a secret is
 * set; each attempt bounded by `timeoutMs`, 3 attempts with backoff; failures are only logged.
 * A refused target (non-public address) is not retried.
 */
export function fireWebhook(webhook: Webhook, payload: Record<string, unknown>, options: { timeoutMs: number; allowPrivate: boolean; logger: Logger }): void {
  if (!options.allowPrivate && isPrivateTarget(webhook.url)) {
    options.logger.warn({ event: payload["event"] }, "webhook to a private or loopback address refused");
    return;
  }
  const url = new URL(webhook.url);
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { ...webhook.headers, "content-type": "application/json", "user-agent": "Clasper-Webhook/1.0" };
  if (webhook.secret) headers[SIGNATURE_HEADER] = signWebhook(webhook.secret, body);
  void (async () => {
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      try {
        const status = await postOnce(url, headers, body, options.timeoutMs, options.allowPrivate);
        // 2xx delivered; 3xx (not followed) and 4xx other than 429 will not change on a retry.
        if (status < 500 && status !== 429) return;
      } catch (err) {
        const refused = (err as NodeJS.ErrnoException).code === "ERR_WEBHOOK_PRIVATE_ADDRESS";
        if (refused || attempt === 3) {
          options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, refused ? "webhook to a private or loopback address refused" : "webhook delivery failed");
          return;
        }
      }
      await sleep(500 * 2 ** (attempt - 1));
    }
  })();
}
