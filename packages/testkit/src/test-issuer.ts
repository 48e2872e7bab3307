import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

export interface TestIssuerOptions {
  /** `aud` put into every token unless `sign` overrides it. */
  audience?: string;
  /** Default lifetime of signed tokens. Default 300 s. */
  ttlSeconds?: number;
}

export interface SignOptions {
  /** Overrides the issuer's default lifetime; negative values mint expired tokens. */
  ttlSeconds?: number;
  audience?: string;
  /** Overrides `iss` (to test issuer checks). */
  issuer?: string;
}

export interface TestIssuer {
  /** `http://127.0.0.1:<port>`: the `iss` of every token and the OIDC discovery base. */
  readonly issuer: string;
  /** `${issuer}/.well-known/jwks.json`. */
  readonly jwksUrl: string;
  /** `kid` of the current signing key. */
  readonly kid: string;
  /** How many times the JWKS was fetched. */
  readonly jwksFetches: number;
  /** An RS256 token with `iss`, `iat`, `exp` (and `aud` when configured) added to `claims`. */
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>;
  /** Switches to a fresh key; the JWKS then publishes only the new one. */
  rotate(): Promise<void>;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

let keySeq = 0;

async function freshKey(): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = `test-key-${++keySeq}`;
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

/** An OIDC-style issuer on 127.0.0.1: discovery document, JWKS and a signer. */
export async function startTestIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  let key = await freshKey();
  let jwksFetches = 0;
  let issuer = "";
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://issuer").pathname;
    let body: unknown;
    if (path === "/.well-known/jwks.json") {
      jwksFetches++;
      body = { keys: [key.jwk] };
    } else if (path === "/.well-known/openid-configuration") {
      body = { issuer, jwks_uri: `${issuer}/.well-known/jwks.json`, id_token_signing_alg_values_supported: ["RS256"] };
    }
    res.writeHead(body === undefined ? 404 : 200, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { error: "not_found" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    get kid() {
      return key.kid;
    },
    get jwksFetches() {
      return jwksFetches;
    },
    async sign(claims, signOptions = {}) {
      const now = Math.floor(Date.now() / 1000);
      const audience = signOptions.audience ?? options.audience;
      const payload: JWTPayload = {
        iss: signOptions.issuer ?? issuer,
        iat: now,
        exp: now + (signOptions.ttlSeconds ?? options.ttlSeconds ?? 300),
        ...(audience !== undefined ? { aud: audience } : {}),
        ...claims,
      };
      return new SignJWT(payload).setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" }).sign(key.privateKey);
    },
    async rotate() {
      key = await freshKey();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
