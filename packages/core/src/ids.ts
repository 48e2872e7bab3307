import { randomBytes } from "node:crypto";
import { v7 } from "uuid";

/** UUIDv7: time-ordered, so ids sort by creation and index inserts stay append-only. */
export function uuidv7(): string {
  return v7();
}

/** Short random id for requests and correlation. */
export function requestId(): string {
  return randomBytes(12).toString("base64url");
}
