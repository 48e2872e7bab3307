import { chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCallerVerifier, DEV_SECRET_FILE, ensureDevSecret, mintDevToken } from "../src/index.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "clasper-auth-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("dev mode", () => {
  it("creates a private 48-byte secret once and reads it back afterwards", async () => {
    const dir = join(root, ".clasper");
    const [first, concurrent] = await Promise.all([ensureDevSecret(dir), ensureDevSecret(dir)]);
    expect(concurrent).toBe(first);
    expect(Buffer.from(first, "base64url")).toHaveLength(48);
    expect((await stat(join(dir, DEV_SECRET_FILE))).mode & 0o777).toBe(0o600);
    expect(await ensureDevSecret(dir)).toBe(first);
    expect((await readFile(join(dir, DEV_SECRET_FILE), "utf8")).trim()).toBe(first);
  });

  it.skipIf(process.platform === "win32")("refuses a secret file other users can read", async () => {
    const dir = join(root, ".clasper");
    await ensureDevSecret(dir);
    await chmod(join(dir, DEV_SECRET_FILE), 0o644);
    await expect(ensureDevSecret(dir)).rejects.toThrow(/chmod 600/);
  });

  it("mints a token the caller verifier accepts as the dev admin", async () => {
    const secret = await ensureDevSecret(join(root, ".clasper"));
    const token = await mintDevToken(secret, { ttl: 60 });
    const principal = await createCallerVerifier({ hsSecret: secret }).verify(`Bearer ${token}`);
    expect(principal).toMatchObject({ tenantId: "dev", userId: "dev-user", role: "admin" });
    const viewer = await mintDevToken(secret, { tenantId: "acme", roles: ["viewer"], userId: "v" });
    await expect(createCallerVerifier({ hsSecret: secret }).verify(`Bearer ${viewer}`)).resolves.toMatchObject({
      tenantId: "acme",
      role: "viewer",
    });
  });
});
