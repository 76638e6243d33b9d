/**
 * Bearer token verification, behind a small interface so the pipeline does not
 * know aws-jwt-verify and tests can use real tokens signed at test time.
 */
import { CognitoJwtVerifier, JwtVerifier } from 'aws-jwt-verify';
import { SimpleFetcher, type Fetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import type { Actor } from '../command.js';
import { isLoopbackHost, type ManageConfig } from '../config.js';
import { Unauthorized } from '../errors.js';

export type TokenActor = Extract<Actor, { kind: 'token' }>;

export interface TokenVerifier {
  /**
   * @returns the caller named by a valid token
   * @throws Unauthorized for every kind of invalid token, whatever the reason
   */
  verify(token: string): Promise<TokenActor>;
}

export interface TokenVerifierOptions {
  /** How JWKS documents are fetched; the default refuses `http:` except on loopback hosts. */
  fetcher?: Fetcher;
}

/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** Build the verifiers once, at cold start, for the issuers the config names. */
export function createTokenVerifier(config: ManageConfig, options: TokenVerifierOptions = {}): TokenVerifier {
  const jwksCache = new SimpleJwksCache({ fetcher: new BackoffFetcher(options.fetcher ?? new LoopbackAwareFetcher()) });
  const oidc = config.oidc
    ? JwtVerifier.create(
        { issuer: config.oidc.issuer, audience: config.oidc.audiences, jwksUri: config.oidc.jwksUri },
        { jwksCache },
      )
    : undefined;
  const cognito = config.cognito
    ? CognitoJwtVerifier.create(
        { userPoolId: config.cognito.userPoolId, clientId: config.cognito.clientIds, tokenUse: config.cognito.tokenUse },
        { jwksCache },
      )
    : undefined;
  const oidcIssuer = config.oidc?.issuer;

  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH || !isUtf8Jwt(token)) throw new Unauthorized();
      let payload: Record<string, unknown>;
      try {
        // The unverified `iss` only picks the verifier; that verifier checks it again.
        const verifier = oidc && unverifiedIssuer(token) === oidcIssuer ? oidc : (cognito ?? oidc);
        payload = (await verifier!.verify(token)) as Record<string, unknown>;
      } catch (error) {
        // Any failure, including the plain Error a malformed signature throws, is a 401.
        throw new Unauthorized({ cause: error });
      }
      return actorFromClaims(payload);
    },
  };
}

/** The verified claims we act on; a token without `exp` or `sub` is refused, as aws-jwt-verify would let it pass. */
function actorFromClaims(payload: Record<string, unknown>): TokenActor {
  const { iss, sub, exp } = payload;
  if (typeof exp !== 'number' || typeof iss !== 'string' || typeof sub !== 'string' || sub === '') {
    throw new Unauthorized();
  }
  const username = stringClaim(payload['cognito:username']) ?? stringClaim(payload['username']);
  return {
    kind: 'token',
    issuer: iss,
    subject: sub,
    ...(username ? { username } : {}),
    groups: listClaim(payload['cognito:groups'] ?? payload['groups']),
    scopes: listClaim(payload['scope'] ?? payload['scp']),
  };
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Groups and scopes come as arrays or as one space-separated string, depending on the issuer. */
function listClaim(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string' && item !== '');
  return [];
}

function unverifiedIssuer(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof payload?.iss === 'string' ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * aws-jwt-verify fetches JWKS over https only. A development issuer on this
 * machine serves plain http; the config allows that for loopback hosts only,
 * and so does this fetcher.
 */
class LoopbackAwareFetcher implements Fetcher {
  private readonly https = new SimpleFetcher();

  async fetch(uri: string, requestOptions?: Record<string, unknown>, data?: ArrayBuffer): Promise<ArrayBuffer> {
    const url = new URL(uri);
    if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) {
      const response = await fetch(url, { signal: AbortSignal.timeout(1500), redirect: 'error' });
      if (!response.ok) throw new Error(`JWKS fetch failed with status ${response.status}`);
      return response.arrayBuffer();
    }
    return this.https.fetch(uri, requestOptions, data);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** RFC 7519 §7.2: header and payload are UTF-8; decoded leniently, distinct byte strings would read as one claim. */
function isUtf8Jwt(token: string): boolean {
  try {
    for (const part of token.split('.').slice(0, 2)) strictUtf8.decode(Buffer.from(part, 'base64url'));
    return true;
  } catch {
    return false;
  }
}

/**
 * aws-jwt-verify's penalty box only holds back a refetch after a JWKS that lacked the kid;
 * a fetch that failed would be retried by every request. This backs off after a failure too.
 */
class BackoffFetcher implements Fetcher {
  private readonly failedUntil = new Map<string, number>();
  constructor(
    private readonly inner: Fetcher,
    private readonly backoffMs = 10_000,
  ) {}

  async fetch(uri: string, requestOptions?: Record<string, unknown>, data?: ArrayBuffer): Promise<ArrayBuffer> {
    if (Date.now() < (this.failedUntil.get(uri) ?? 0)) throw new Error('JWKS fetch is backing off after a failure');
    try {
      const result = await this.inner.fetch(uri, requestOptions, data);
      this.failedUntil.delete(uri);
      return result;
    } catch (error) {
      this.failedUntil.set(uri, Date.now() + this.backoffMs);
      throw error;
    }
  }
}
