import { Code } from "@connectrpc/connect";
import { clasperError } from "@clasper/core";

/**
 * The agent role of `user:<user_id>:<role>[:...]` after checking that the key names `userId`.
 * The proto pattern already refused malformed keys (400, not the original's 500).
 */
export function roleOfSession(sessionKey: string, userId: string): string {
  const parts = sessionKey.split(":");
  if (parts.length < 3 || parts[0] !== "user" || !parts[1] || !parts[2]) {
    throw clasperError(Code.InvalidArgument, "session_key: must be user:<user_id>:<role>", { reason: "invalid_field", field: "session_key" });
  }
  if (parts[1] !== userId) {
    throw clasperError(Code.InvalidArgument, "user_id does not match session_key", { reason: "user_mismatch", field: "user_id" });
  }
  return parts[2];
}
