import type http from "node:http";
import type { DescMessage, JsonValue, Message } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { fromConnectError } from "./http-errors.js";
import { restJsonByReflection } from "./rest-json.js";

/**
 * Renders a server-streaming RPC as Server-Sent Events. Each response message is expected to hold
 * its event in a oneof: the set case's name becomes the SSE event name, its value the data (with
 * a "type" field, as the documented stream events carry).
 */
export async function writeSse(res: http.ServerResponse, stream: AsyncIterable<Message>, schema: DescMessage): Promise<void> {
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
    for await (const message of stream) {
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
