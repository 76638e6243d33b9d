/**
 * The token cache: one file per profile, `<config dir>/tokens/<profile>.json`,
 * mode 0600 in a 0700 directory. A cached token is used until one minute
 * before it expires; a refresh token, when there is one, renews it without
 * signing in again. A fingerprint of the profile's sign-in settings is stored
 * with the token, so that changing them invalidates the cache.
 */
import { chmodSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { configDir, writePrivateFile, type AuthConfig } from '../config.js';
import { registerSecret } from '../io.js';

export interface CachedToken {
  accessToken: string;
  refreshToken?: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** The sign-in method that produced it. */
  method: string;
  fingerprint: string;
  /** Where to refresh (OAuth token endpoint), when the method needs it. */
  tokenEndpoint?: string;
  /** Cognito: the user's Cognito username, for the SECRET_HASH of a refresh. */
  username?: string;
}

/** A token this close to its expiry is treated as expired. */
export const EXPIRY_MARGIN_MS = 60_000;

export function cachePath(profile: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'tokens', `${profile}.json`);
}

export function fingerprint(auth: AuthConfig | undefined, extra: Record<string, unknown> = {}): string {
  return createHash('sha256').update(JSON.stringify({ auth: auth ?? null, ...extra })).digest('hex').slice(0, 32);
}

export function readCache(profile: string, env: NodeJS.ProcessEnv = process.env): CachedToken | undefined {
  const path = cachePath(profile, env);
  let text: string;
  try {
    // A cache someone made readable by others is tightened before it is used.
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as CachedToken;
    if (typeof value.accessToken !== 'string' || typeof value.expiresAt !== 'number') return undefined;
    registerSecret(value.accessToken);
    registerSecret(value.refreshToken);
    return value;
  } catch {
    return undefined;
  }
}

export function writeCache(profile: string, token: CachedToken, env: NodeJS.ProcessEnv = process.env): void {
  registerSecret(token.accessToken);
  registerSecret(token.refreshToken);
  writePrivateFile(cachePath(profile, env), `${JSON.stringify(token)}\n`);
}

export function clearCache(profile: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const path = cachePath(profile, env);
  try {
    statSync(path);
  } catch {
    return false;
  }
  rmSync(path, { force: true });
  return true;
}

export function isFresh(token: CachedToken, now = Date.now()): boolean {
  return token.expiresAt - EXPIRY_MARGIN_MS > now;
}

/** The claims of a JWT, unverified (only to read `exp` and a name to show): undefined for an opaque token. */
export function decodeJwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** When a token expires: its `exp` claim if it is a JWT, else `expires_in` seconds from now, else five minutes. */
export function expiryOf(token: string, expiresInSeconds?: number, now = Date.now()): number {
  const exp = decodeJwtClaims(token)?.exp;
  if (typeof exp === 'number' && Number.isFinite(exp)) return exp * 1000;
  if (typeof expiresInSeconds === 'number' && expiresInSeconds > 0) return now + expiresInSeconds * 1000;
  return now + 300_000;
}

/**
 * A name to show for whoever a token stands for (never the token): a person's
 * name claim from the access token or else the ID token; for an RFC 9068 token
 * of a client-credentials grant (`sub` is the client id), "client <id>".
 */
export function subjectOf(token: string, idToken?: string): string | undefined {
  const sets = [decodeJwtClaims(token), idToken ? decodeJwtClaims(idToken) : undefined].filter((c): c is Record<string, unknown> => c !== undefined);
  for (const claims of sets) {
    for (const key of ['username', 'preferred_username', 'email', 'cognito:username', 'name']) {
      const value = claims[key];
      if (typeof value === 'string' && value) return value;
    }
  }
  const claims = sets[0];
  if (!claims) return undefined;
  const sub = typeof claims.sub === 'string' && claims.sub ? claims.sub : undefined;
  const client = [claims.client_id, claims.azp].find((v): v is string => typeof v === 'string' && v !== '');
  if (client && (!sub || sub === client)) return `client ${client}`;
  return sub ?? (client ? `client ${client}` : undefined);
}

/** The Cognito username a token names (`username` of an access token, `cognito:username` of an ID token), else its `sub`. */
export function cognitoUsernameOf(token: string): string | undefined {
  const claims = decodeJwtClaims(token);
  for (const key of ['username', 'cognito:username', 'sub']) {
    const value = claims?.[key];
    if (typeof value === 'string' && value) return value;
  }
  return undefined;
}
