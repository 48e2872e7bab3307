import type http from "node:http";
import type { DescMessage, JsonValue, Message } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { fromConnectError } from "./http-errors.js";
import { restJsonByReflection } from "./rest-json.js";

/**
 * Renders a server-streaming RPC as Server-Sent Events. Each response message is expected to hold
 * its event in a oneof: the set case's name becomes the SSE event name, its value the data (with
 * a "type" field, as the documented stream events carry).
 *
 * Nothing is written until the stream yields its first message: a call the service refuses
 * outright (bad input, permission, a missing resource) rejects here, before any header, so the
 * caller renders it as the ordinary JSON error with its status (400, 403, …) instead of a 200
 * with an error event. A failure after the first message can only be an error event.
 */
export async function writeSse(res: http.ServerResponse, stream: AsyncIterable<Message>, schema: DescMessage): Promise<void> {
  const messages = stream[Symbol.asyncIterator]();
  let next = await messages.next();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const oneof = schema.oneofs[0];
  const frame = (event: string, data: JsonValue) => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  try {
    for (; !next.done; next = await messages.next()) {
      const message = next.value;
      const json = restJsonByReflection(schema, message);
      if (oneof && typeof json === "object" && json !== null && !Array.isArray(json)) {
        const set = oneof.fields.find((f) => json[f.name] !== undefined && json[f.name] !== null);
        if (set) {
          const value = json[set.name];
          const data: JsonValue =
            typeof value === "object" && value !== null && !Array.isArray(value) ? { type: set.name, ...value } : { type: set.name, value: value ?? null };
          frame(set.name, data);
          continue;
        }
      }
      frame("message", json);
    }
  } catch (err) {
    const answer = fromConnectError(ConnectError.from(err), "stream");
    frame("error", { type: "error", error: answer.body.error.message, code: answer.body.error.code });
  } finally {
    res.end();
  }
}
