import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import pino from "pino";
import { create } from "@bufbuild/protobuf";
import { WebhookSchema } from "@clasper/proto";
import { fireWebhook, isPrivateTarget, isPublicAddress, publicOnlyLookup, signWebhook, SIGNATURE_HEADER } from "../src/execution/webhook.js";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A receiver on loopback that records every request and answers `status` (and `location`). */
async function receiver(status = 200, location?: string): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(status, location ? { location } : {}).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

function recordingLogger(): { logger: pino.Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => warnings.push(JSON.parse(line).msg as string) });
  return { logger, warnings };
}

const until = async (check: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

describe("webhook targets", () => {
  it.each([
    ["8.8.8.8", true],
    ["2606:4700:4700::1111", true],
    ["127.0.0.1", false],
    ["10.1.2.3", false],
    ["172.16.0.1", false],
    ["192.168.1.1", false],
    ["169.254.169.254", false],
    ["100.64.0.1", false],
    ["0.0.0.0", false],
    ["255.255.255.255", false],
    ["224.0.0.1", false],
    ["::1", false],
    ["::", false],
    ["fd00::1", false],
    ["fe80::1", false],
    ["::ffff:127.0.0.1", false],
    ["::ffff:10.0.0.1", false],
    ["2002:7f00:1::", false],
    ["not an address", false],
  ])("classifies %s as public: %s", (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it.each([
    ["http://127.0.0.1:8080/x", true],
    ["http://[::1]/x", true],
    ["http://[::ffff:7f00:1]/x", true],
    ["http://169.254.169.254/latest/meta-data", true],
    ["ftp://example.com/x", true],
    ["not a url", true],
    ["https://8.8.8.8/x", false],
    ["https://hooks.example.com/x", false],
  ])("refuses %s before connecting: %s", (url, expected) => {
    expect(isPrivateTarget(url)).toBe(expected);
  });

  it("refuses a host name that resolves to loopback, at connection time", async () => {
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => publicOnlyLookup("localhost", {}, (err) => resolve(err)));
    expect(error?.code).toBe("ERR_WEBHOOK_PRIVATE_ADDRESS");
  });
});

describe("fireWebhook", () => {
  const hook = (url: string) => create(WebhookSchema, { url, secret: "s3cret", headers: { "x-tenant-hint": "acme" } });

  it("delivers a signed JSON body when private targets are allowed", async () => {
    const { url, received } = await receiver();
    const { logger } = recordingLogger();
    fireWebhook(hook(url), { event: "agent.completed", n: 1 }, { timeoutMs: 2000, allowPrivate: true, logger });
    await until(() => received.length > 0);
    expect(received).toHaveLength(1);
    const [first] = received as [Received];
    expect(JSON.parse(first.body)).toEqual({ event: "agent.completed", n: 1 });
    expect(first.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(signWebhook("s3cret", first.body));
    expect(first.headers["x-tenant-hint"]).toBe("acme");
    expect(first.headers["user-agent"]).toBe("Clasper-Webhook/1.0");
  });

  it("never connects to a loopback host name when private targets are refused", async () => {
    const { url, received } = await receiver();
    const { logger, warnings } = recordingLogger();
    fireWebhook(hook(url.replace("127.0.0.1", "localhost")), { event: "agent.completed" }, { timeoutMs: 2000, allowPrivate: false, logger });
    await until(() => warnings.length > 0);
    expect(warnings).toEqual(["webhook to a private or loopback address refused"]);
    expect(received).toHaveLength(0);
  });

  it("does not follow a redirect", async () => {
    const inner = await receiver();
    const outer = await receiver(307, inner.url);
    const { logger } = recordingLogger();
    fireWebhook(hook(outer.url), { event: "agent.completed" }, { timeoutMs: 2000, allowPrivate: true, logger });
    await until(() => outer.received.length > 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(outer.received).toHaveLength(1);
    expect(inner.received).toHaveLength(0);
  });
});
