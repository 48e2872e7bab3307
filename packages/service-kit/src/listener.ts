import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";

/** Handles both HTTP/1.1 and HTTP/2 requests (the shape connectNodeAdapter returns). */
export type DualHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface Listener {
  readonly port: number;
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish (up to timeoutMs), then closes the rest. */
  close(timeoutMs?: number): Promise<void>;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One cleartext port that speaks HTTP/2 (h2c, prior knowledge: Connect and gRPC peers) and
 * HTTP/1.1 (Kubernetes probes, curl, Prometheus) at once. Node's h2c server cannot fall back to
 * HTTP/1.1 by itself, so we peek at the first bytes of each connection and hand the socket to
 * the matching server.
 */
export async function listen(handler: DualHandler, options: { port: number; host: string }): Promise<Listener> {
  const h1 = http.createServer({ keepAliveTimeout: 5_000 }, handler);
  const h2 = http2.createServer({}, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  let inFlight = 0;
  const idleWaiters: (() => void)[] = [];
  const track = (res: http.ServerResponse | http2.Http2ServerResponse) => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) idleWaiters.splice(0).forEach((w) => w());
    });
  };
  h1.on("request", (_req, res) => track(res));
  h2.on("request", (_req, res) => track(res));
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("readable", () => {
      const head: Buffer | null = socket.read(Math.min(HTTP2_PREFACE.length, socket.readableLength || HTTP2_PREFACE.length));
      if (head === null) {
        socket.destroy();
        return;
      }
      socket.unshift(head);
      const isHttp2 = head.length >= 3 && HTTP2_PREFACE.subarray(0, head.length).equals(head);
      (isHttp2 ? h2 : h1).emit("connection", socket);
    });
  });

  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(options.port, options.host, () => resolve());
  });
  const address = front.address() as AddressInfo;
  const displayHost = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;

  return {
    port: address.port,
    url: `http://${displayHost}:${address.port}`,
    async close(timeoutMs = 10_000) {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      h1.closeIdleConnections();
      for (const session of sessions) session.close();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => idleWaiters.push(resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
        ]);
      }
      h1.closeAllConnections();
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
