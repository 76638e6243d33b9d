/**
 * What a token says, read without trusting it (its type, its header and payload)
 * and, once verified, the claims we act on: who, which groups, which scopes.
 */
import type { Actor } from '../command.js';

export type TokenActor = Extract<Actor, { kind: 'token' }>;

/**
 * The type a token states for itself: RFC 9068 `typ: at+jwt` header, Cognito's
 * `token_use` claim, Keycloak's `typ` claim (`Bearer`, `ID`, `Refresh`…).
 */
export function statedTokenType(header: Record<string, unknown>, payload: Record<string, unknown>): 'access' | 'id' | 'other' | undefined {
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : undefined;
  if (typ === 'at+jwt' || typ === 'application/at+jwt') return 'access';
  if (payload.token_use === 'access' || payload.token_use === 'id') return payload.token_use;
  if (payload.token_use !== undefined) return 'other';
  if (typeof payload.typ === 'string') {
    const claim = payload.typ.toLowerCase();
    if (claim === 'bearer') return 'access';
    if (claim === 'id') return 'id';
    return 'other';
  }
  return undefined;
}

/** The verified claims we act on. */
export function actorFromClaims(payload: Record<string, unknown>, groupsClaims: readonly string[]): TokenActor {
  const username = stringClaim(payload['cognito:username']) ?? stringClaim(payload['username']) ?? stringClaim(payload['preferred_username']);
  return {
    kind: 'token',
    issuer: payload.iss as string,
    subject: payload.sub as string,
    ...(username ? { username } : {}),
    groups: groupsOf(payload, groupsClaims),
    scopes: scopesOf(payload),
  };
}

export function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The value at a claim path: the claim of that exact name if there is one
 * (`cognito:groups`, Auth0's `https://example.com/roles`), else the path split
 * on dots (`realm_access.roles`). Own properties only.
 */
export function claimAt(payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let value: unknown = payload;
  for (const segment of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/**
 * Groups from every configured claim path. A string is ONE group (`"external
 * auditors"` is not `auditors`); an array's strings are groups. A group path
 * (`/ops`, Keycloak's group membership) also counts without its leading `/`
 * (`ops`); `/eng/ops` counts as `eng/ops`, never as `ops`.
 */
export function groupsOf(payload: Record<string, unknown>, groupsClaims: readonly string[]): string[] {
  const groups = new Set<string>();
  for (const path of groupsClaims) {
    const value = claimAt(payload, path);
    const items = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
    for (const item of items) {
      if (typeof item !== 'string' || item === '') continue;
      groups.add(item);
      if (item.startsWith('/') && item.length > 1) groups.add(item.slice(1));
    }
  }
  return [...groups];
}

/** OAuth scopes: `scope` (RFC 8693/9068: one space-separated string) or `scp` (Entra: string; Okta: array). */
export function scopesOf(payload: Record<string, unknown>): string[] {
  const value = payload['scope'] ?? payload['scp'];
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string' && item !== '');
  return [];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Header and payload of a compact JWS, unverified. RFC 7519 §7.2: they are
 * UTF-8; decoded leniently, distinct byte strings would read as one claim.
 */
export function decodeUnverified(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[2]!)) return undefined;
  try {
    const [header, payload] = parts.slice(0, 2).map((part) => {
      if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error('not base64url');
      const value: unknown = JSON.parse(strictUtf8.decode(Buffer.from(part, 'base64url')));
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    });
    return { header: header!, payload: payload! };
  } catch {
    return undefined;
  }
}
