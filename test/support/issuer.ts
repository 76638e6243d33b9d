/**
 * A token issuer made at test time: fresh RS256 and ES256 keys each run, a JWKS
 * served on loopback, and real signed tokens.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload, type CryptoKey } from 'jose';

export interface TestIssuer {
  issuer: string;
  audience: string;
  jwks: { keys: JWK[] };
  /** How many times the JWKS was fetched. */
  fetchCount(): number;
  /** How many times the discovery document was fetched. */
  discoveryCount(): number;
  sign(claims?: JWTPayload, options?: SignOptions): Promise<string>;
  close(): Promise<void>;
  keys: Record<'RS256' | 'ES256', { privateKey: CryptoKey; publicJwk: JWK; kid: string }>;
}

export interface SignOptions {
  alg?: 'RS256' | 'ES256';
  kid?: string;
  /** Seconds from now; `null` leaves `exp` out. */
  expiresIn?: number | null;
  header?: Record<string, unknown>;
  privateKey?: CryptoKey;
}

export async function startTestIssuer(audience = 'mm-test'): Promise<TestIssuer> {
  const keys = {} as TestIssuer['keys'];
  for (const alg of ['RS256', 'ES256'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `${alg.toLowerCase()}-${Math.random().toString(36).slice(2, 8)}`;
    keys[alg] = { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, kid };
  }
  const jwks = { keys: [keys.RS256.publicJwk, keys.ES256.publicJwk] };
  let fetches = 0;
  let discoveries = 0;
  let issuer = '';
  const server: Server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    } else if (req.url === '/.well-known/openid-configuration') {
      // Where the server finds the JWKS by default (MANAGE_JWT_JWKS_URI unset).
      discoveries++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json` }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    audience,
    jwks,
    keys,
    fetchCount: () => fetches,
    discoveryCount: () => discoveries,
    async sign(claims = {}, options = {}) {
      const alg = options.alg ?? 'RS256';
      const key = keys[alg];
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = { iss: issuer, aud: audience, sub: 'alice', iat: now, ...claims };
      const expiresIn = options.expiresIn === undefined ? 300 : options.expiresIn;
      if (expiresIn !== null && payload.exp === undefined) payload.exp = now + expiresIn;
      return new SignJWT(payload)
        .setProtectedHeader({ alg, kid: options.kid ?? key.kid, typ: 'JWT', ...options.header })
        .sign(options.privateKey ?? key.privateKey);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
