import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SignJWT } from "jose";
import { AuthConfigError, secretKey } from "./errors.js";
import type { Role } from "./rbac.js";

export const DEV_SECRET_FILE = "auth-secret";

/**
 * Returns the development HS256 secret kept in `<dir>/auth-secret`, creating it (48 random bytes,
 * base64url, mode 0600) on first use so `clasper dev` works with no setup and restarts keep
 * previously printed tokens valid.
 */
export async function ensureDevSecret(dir: string): Promise<string> {
  const file = join(dir, DEV_SECRET_FILE);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Written aside, then hard-linked into place: link() is atomic and fails if the file exists,
  // so two processes starting together never see a half-written secret and the loser reads
  // the winner's.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    await writeFile(draft, randomBytes(48).toString("base64url") + "\n", { flag: "wx", mode: 0o600 });
    await link(draft, file);
  } catch (err) {
    if (!isErrno(err, "EEXIST")) throw err;
  } finally {
    await rm(draft, { force: true });
  }
  if (process.platform !== "win32" && ((await stat(file)).mode & 0o077) !== 0) {
    throw new AuthConfigError(`${file} is readable by other users; run: chmod 600 ${file}`);
  }
  const secret = (await readFile(file, "utf8")).trim();
  secretKey(secret, file);
  return secret;
}

export interface DevTokenOptions {
  tenantId?: string;
  roles?: Role[];
  userId?: string;
  workspaceId?: string;
  /** Lifetime in seconds (default 12 h: one working day without re-minting). */
  ttl?: number;
}

/** A caller token for local development, in the claim shape createCallerVerifier expects by default. */
export async function mintDevToken(secret: string, options: DevTokenOptions = {}): Promise<string> {
  const userId = options.userId ?? "dev-user";
  return new SignJWT({
    tenant_id: options.tenantId ?? "dev",
    user_id: userId,
    roles: options.roles ?? ["admin"],
    ...(options.workspaceId ? { workspace_id: options.workspaceId } : {}),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(`${options.ttl ?? 12 * 3600}s`)
    .sign(secretKey(secret, "CLASPER_AUTH_JWT_SECRET"));
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
