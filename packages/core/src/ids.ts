import { randomFillSync } from "node:crypto";
import { v7 } from "uuid";

/** UUIDv7: time-ordered, so ids sort by creation and index inserts stay append-only. */
export function uuidv7(): string {
  return v7();
}

/**
 * 12 random bytes per id, taken from a buffer refilled from the CSPRNG every 256 ids: the same
 * bytes a randomBytes(12) per call gives, without a getrandom system call per request.
 */
const ID_BYTES = 12;
const pool = Buffer.alloc(ID_BYTES * 256);
let poolOffset = pool.length;

/** Short random id for requests and correlation. */
export function requestId(): string {
  if (poolOffset + ID_BYTES > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const id = pool.toString("base64url", poolOffset, poolOffset + ID_BYTES);
  // Zeroed once used, so the buffer never holds an id that was already handed out.
  pool.fill(0, poolOffset, poolOffset + ID_BYTES);
  poolOffset += ID_BYTES;
  return id;
}
