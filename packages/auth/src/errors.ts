import { webcrypto } from "node:crypto";
import { Code, type ConnectError } from "@connectrpc/connect";
import { clasperError, unauthenticated } from "@clasper/core";
import { errors } from "jose";

/** Stable, documented reasons a caller credential is refused. */
export type AuthErrorCode =
  | "missing_token"
  | "invalid_token"
  | "token_expired"
  | "missing_claim"
  | "invalid_daemon_key"
  | "ambiguous_credentials"
  | "auth_unavailable";

/**
 * A refused credential. Messages are written here, never copied from jose or from the token, so
 * neither key material nor attacker-controlled text reaches the response body.
 * `auth_unavailable` (503) means *we* could not check the token (JWKS endpoint down); telling the
 * caller its token is invalid would be a lie that sends them chasing the wrong problem.
 */
export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly status: 401 | 503;
  readonly code: AuthErrorCode;

  constructor(code: AuthErrorCode, message: string) {
    super(message);
    this.code = code;
    this.status = code === "auth_unavailable" ? 503 : 401;
  }

  /** The same refusal for Connect handlers, with the code as the ErrorInfo reason. */
  toConnectError(): ConnectError {
    return this.status === 503
      ? clasperError(Code.Unavailable, this.message, { reason: this.code, httpStatus: 503 })
      : unauthenticated(this.message, this.code);
  }
}

/** Misconfiguration found at start-up; the message names the environment variable to fix. */
export class AuthConfigError extends Error {
  override readonly name = "AuthConfigError";
}

/** HS256 is only as strong as its key: below 32 bytes an offline brute force becomes practical. */
export const MIN_SECRET_BYTES = 32;

/** Returns the secret as bytes for jose, or throws naming `variable` when it is too short. */
export function secretKey(secret: string | undefined, variable: string): Uint8Array {
  const bytes = new TextEncoder().encode(secret ?? "");
  if (bytes.byteLength < MIN_SECRET_BYTES) {
    throw new AuthConfigError(
      `${variable} must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes.byteLength}); ` +
        `generate one with: openssl rand -base64 48`,
    );
  }
  return bytes;
}

/** Translates jose failures into our codes with our own words (see AuthError). */
export async function mapJoseErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw toAuthError(err);
  }
}

function toAuthError(err: unknown): unknown {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired) return new AuthError("token_expired", "token has expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === "missing") return new AuthError("missing_claim", `token has no ${err.claim} claim`);
    return new AuthError("invalid_token", `token ${err.claim} claim is not accepted`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new AuthError("invalid_token", "token algorithm is not accepted");
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError("invalid_token", "token signature is invalid");
  }
  if (err instanceof errors.JWKSNoMatchingKey) return new AuthError("invalid_token", "token is signed by an unknown key");
  if (err instanceof errors.JOSEError) return new AuthError("invalid_token", "token is malformed");
  // Anything else is a bug on our side; let it surface as an internal error.
  return err;
}

/**
 * The secret imported once as an HMAC CryptoKey. jose re-imports raw bytes on every sign and
 * verify, which halves the throughput of the per-request internal context (measured in
 * docs/PERFORMANCE.md); the length check still runs synchronously at construction.
 */
export function hmacKey(secret: string | undefined, variable: string): () => Promise<webcrypto.CryptoKey> {
  const bytes = secretKey(secret, variable);
  let imported: Promise<webcrypto.CryptoKey> | undefined;
  return () => (imported ??= webcrypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]));
}
