/**
 * The token issuers the handler trusts, read by loadConfig (config.ts): Cognito
 * (`MANAGE_COGNITO_*`), one OIDC issuer (`MANAGE_JWT_ISSUER`, `_AUDIENCE`,
 * `_JWKS_URI`, `_TOKEN_USE`), a list of them (`MANAGE_JWT_ISSUERS`), and where
 * the caller's groups are (`MANAGE_JWT_GROUPS_CLAIM`). An issuer is fetched from
 * (discovery, JWKS), so a plain-http one is accepted on a loopback host only.
 */
import { isIP } from 'node:net';
import { ConfigError, list, text, url, type Environment } from './variables.js';

/** Accept Cognito user pool tokens. */
export interface CognitoIssuerConfig {
  userPoolId: string;
  /** App client ids whose tokens are accepted (`client_id` / `aud`). */
  clientIds: string[];
  tokenUse: 'access' | 'id';
  /** Claim paths that hold the caller's groups (`MANAGE_JWT_GROUPS_CLAIM`, default `cognito:groups`). */
  groupsClaims: string[];
}

/** Accept tokens of an OIDC issuer (`MANAGE_JWT_ISSUER`… or one entry of `MANAGE_JWT_ISSUERS`). */
export interface OidcIssuerConfig {
  /** Exactly as its tokens' `iss` spells it (Auth0's ends with `/`); discovery is at `<issuer without the trailing />/.well-known/openid-configuration`. */
  issuer: string;
  /** A token's `aud` must name one of these (or, for a Cognito-shaped access token with `tokenUse: access`, its `client_id`). */
  audiences: string[];
  /** Explicit JWKS URI; absent: the `jwks_uri` of the issuer's discovery document. */
  jwksUri?: string;
  /** Claim paths that hold the caller's groups, dots for nesting (default `groups`, then `cognito:groups`). */
  groupsClaims: string[];
  /**
   * The token type the issuer must state: `access` (RFC 9068 `typ: at+jwt`, Cognito `token_use`,
   * Keycloak `typ: Bearer`) or `id` (no access-token statement). Absent: not checked.
   */
  tokenUse?: 'access' | 'id';
  /** Where it was configured, for messages: `MANAGE_JWT_ISSUER` or `MANAGE_JWT_ISSUERS[2]`. */
  source: string;
}

/** Default claim paths of the caller's groups. */
export const DEFAULT_GROUPS_CLAIMS = { oidc: ['groups', 'cognito:groups'], cognito: ['cognito:groups'] } as const;

/** Which Cognito token is accepted without `MANAGE_COGNITO_TOKEN_USE` (also in config.ts's `configDefaults`). */
export const issuerDefaults = { cognitoTokenUse: 'access' } as const;

/**
 * Cognito and the OIDC issuers; at least one must be configured.
 * @throws ConfigError naming the first variable that is wrong
 */
export function trustedIssuers(env: Environment): { cognito?: CognitoIssuerConfig; oidcIssuers: OidcIssuerConfig[] } {
  const groupsClaims = claimPaths(text(env, 'MANAGE_JWT_GROUPS_CLAIM'), 'MANAGE_JWT_GROUPS_CLAIM');
  const cognito = cognitoConfig(env, groupsClaims);
  const oidcIssuers = oidcConfigs(env, groupsClaims);
  if (!cognito && oidcIssuers.length === 0) {
    throw new ConfigError(
      'MANAGE_JWT_ISSUER',
      'no token issuer is configured; set MANAGE_JWT_ISSUER (with MANAGE_JWT_AUDIENCE), MANAGE_JWT_ISSUERS or MANAGE_COGNITO_USER_POOL_ID',
    );
  }
  return { ...(cognito ? { cognito } : {}), oidcIssuers };
}

function cognitoConfig(env: Environment, groupsClaims: string[] | undefined): CognitoIssuerConfig | undefined {
  const userPoolId = text(env, 'MANAGE_COGNITO_USER_POOL_ID');
  if (!userPoolId) return undefined;
  if (!/^[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+$/.test(userPoolId)) {
    throw new ConfigError('MANAGE_COGNITO_USER_POOL_ID', `"${userPoolId}" is not a user pool id (e.g. eu-west-1_AbCdEf123)`);
  }
  const clientIds = list(env, 'MANAGE_COGNITO_CLIENT_ID');
  if (clientIds.length === 0) {
    // aws-jwt-verify makes the client check mandatory; so do we: any app client of the pool is not enough.
    throw new ConfigError('MANAGE_COGNITO_CLIENT_ID', 'is required with MANAGE_COGNITO_USER_POOL_ID');
  }
  const tokenUse = text(env, 'MANAGE_COGNITO_TOKEN_USE') ?? issuerDefaults.cognitoTokenUse;
  if (tokenUse !== 'access' && tokenUse !== 'id') {
    throw new ConfigError('MANAGE_COGNITO_TOKEN_USE', `must be "access" or "id", not "${tokenUse}"`);
  }
  return { userPoolId, clientIds, tokenUse, groupsClaims: groupsClaims ?? [...DEFAULT_GROUPS_CLAIMS.cognito] };
}

/** The single issuer (`MANAGE_JWT_ISSUER`…) and the list (`MANAGE_JWT_ISSUERS`), in that order; no issuer twice. */
function oidcConfigs(env: Environment, groupsClaims: string[] | undefined): OidcIssuerConfig[] {
  const issuers: OidcIssuerConfig[] = [];
  const single = singleOidcConfig(env, groupsClaims);
  if (single) issuers.push(single);
  issuers.push(...issuerList(env, groupsClaims));
  const seen = new Map<string, string>();
  for (const entry of issuers) {
    const key = entry.issuer;
    const first = seen.get(key);
    if (first) {
      throw new ConfigError(entry.source === 'MANAGE_JWT_ISSUER' ? 'MANAGE_JWT_ISSUER' : 'MANAGE_JWT_ISSUERS', `${entry.source} repeats the issuer "${entry.issuer}" of ${first}`);
    }
    seen.set(key, entry.source);
  }
  return issuers;
}

function singleOidcConfig(env: Environment, groupsClaims: string[] | undefined): OidcIssuerConfig | undefined {
  const issuer = text(env, 'MANAGE_JWT_ISSUER');
  if (!issuer) return undefined;
  issuerUrl(issuer, 'MANAGE_JWT_ISSUER', 'MANAGE_JWT_ISSUER');
  const audiences = list(env, 'MANAGE_JWT_AUDIENCE');
  if (audiences.length === 0) {
    throw new ConfigError('MANAGE_JWT_AUDIENCE', 'is required with MANAGE_JWT_ISSUER: without an audience any token of the issuer would pass');
  }
  const jwksUri = text(env, 'MANAGE_JWT_JWKS_URI');
  if (jwksUri) jwksUrl(jwksUri, 'MANAGE_JWT_JWKS_URI', 'MANAGE_JWT_JWKS_URI');
  const tokenUse = tokenUseOf(text(env, 'MANAGE_JWT_TOKEN_USE'), 'MANAGE_JWT_TOKEN_USE', 'MANAGE_JWT_TOKEN_USE');
  return {
    issuer,
    audiences,
    ...(jwksUri ? { jwksUri } : {}),
    groupsClaims: groupsClaims ?? [...DEFAULT_GROUPS_CLAIMS.oidc],
    ...(tokenUse ? { tokenUse } : {}),
    source: 'MANAGE_JWT_ISSUER',
  };
}

const ISSUER_KEYS = new Set(['issuer', 'audience', 'jwksUri', 'groupsClaim', 'tokenUse']);

/** `MANAGE_JWT_ISSUERS`: a JSON array of `{ "issuer", "audience", "jwksUri"?, "groupsClaim"?, "tokenUse"? }`. */
function issuerList(env: Environment, groupsClaims: string[] | undefined): OidcIssuerConfig[] {
  const name = 'MANAGE_JWT_ISSUERS';
  const raw = text(env, name);
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'is not valid JSON (expected an array such as [{"issuer":"https://login.example.com/","audience":"middle-management"}])');
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new ConfigError(name, 'must be a non-empty JSON array of {"issuer", "audience", "jwksUri"?, "groupsClaim"?, "tokenUse"?} objects');
  }
  return parsed.map((entry: unknown, index): OidcIssuerConfig => {
    const at = `${name}[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new ConfigError(name, `${at} must be an object with "issuer" and "audience"`);
    }
    const fields = entry as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (!ISSUER_KEYS.has(key)) throw new ConfigError(name, `${at} has an unknown key "${key}" (known: ${[...ISSUER_KEYS].join(', ')})`);
    }
    const { issuer, audience, jwksUri, groupsClaim, tokenUse } = fields;
    if (typeof issuer !== 'string' || issuer.trim() === '') throw new ConfigError(name, `${at}.issuer is required (the "iss" of its tokens)`);
    issuerUrl(issuer.trim(), name, `${at}.issuer`);
    const audiences = (typeof audience === 'string' ? audience.split(',') : Array.isArray(audience) ? audience : [])
      .map((item) => (typeof item === 'string' ? item.trim() : ''))
      .filter(Boolean);
    if (audiences.length === 0 || (Array.isArray(audience) && audiences.length !== audience.length)) {
      throw new ConfigError(name, `${at}.audience is required (a string or an array of strings): without an audience any token of the issuer would pass`);
    }
    if (jwksUri !== undefined) {
      if (typeof jwksUri !== 'string' || jwksUri.trim() === '') throw new ConfigError(name, `${at}.jwksUri must be a URL`);
      jwksUrl(jwksUri.trim(), name, `${at}.jwksUri`);
    }
    let claims = groupsClaims;
    if (groupsClaim !== undefined) {
      const rawClaims = Array.isArray(groupsClaim) && groupsClaim.every((c) => typeof c === 'string') ? groupsClaim.join(',') : groupsClaim;
      if (typeof rawClaims !== 'string') throw new ConfigError(name, `${at}.groupsClaim must be a claim path or a list of them`);
      claims = claimPaths(rawClaims, name, `${at}.groupsClaim`);
    }
    if (tokenUse !== undefined && typeof tokenUse !== 'string') throw new ConfigError(name, `${at}.tokenUse must be "access" or "id"`);
    const use = tokenUseOf(tokenUse, name, `${at}.tokenUse`);
    return {
      issuer: issuer.trim(),
      audiences,
      ...(typeof jwksUri === 'string' ? { jwksUri: jwksUri.trim() } : {}),
      groupsClaims: claims ?? [...DEFAULT_GROUPS_CLAIMS.oidc],
      ...(use ? { tokenUse: use } : {}),
      source: at,
    };
  });
}

function tokenUseOf(value: string | undefined, variable: string, what: string): 'access' | 'id' | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const use = value.trim();
  if (use !== 'access' && use !== 'id') throw new ConfigError(variable, `${what === variable ? '' : `${what} `}must be "access" or "id", not "${use}"`.trimStart());
  return use;
}

/** Comma-separated claim paths (`realm_access.roles`, `roles`); undefined when unset. */
function claimPaths(value: string | undefined, variable: string, what = variable): string[] | undefined {
  if (value === undefined) return undefined;
  const paths = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (paths.length === 0) throw new ConfigError(variable, `${what === variable ? '' : `${what} `}names no claim`.trimStart());
  for (const path of paths) {
    if (path.split('.').some((segment) => segment === '')) {
      throw new ConfigError(variable, `${what === variable ? '' : `${what}: `}"${path}" is not a claim path (segments separated by single dots)`);
    }
  }
  return paths;
}

/** An issuer is fetched from (discovery): https, or http on a loopback host only. */
function issuerUrl(value: string, variable: string, what: string): URL {
  const parsed = url(value, variable, what);
  if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) {
    throw new ConfigError(variable, `${what === variable ? '' : `${what}: `}an http: issuer is accepted only on a loopback host, not "${parsed.hostname}"`);
  }
  return parsed;
}

function jwksUrl(value: string, variable: string, what: string): URL {
  const parsed = url(value, variable, what);
  if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) {
    throw new ConfigError(variable, `${what === variable ? '' : `${what}: `}an http: JWKS URI is accepted only on a loopback host, not "${parsed.hostname}"`);
  }
  return parsed;
}

/** The issuer without one trailing `/`: where its discovery document hangs, and how near-misses are spotted for the log. */
export function normalizeIssuer(issuer: string): string {
  return issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
}

/** 127.0.0.0/8, ::1 and localhost: where a plain-http JWKS cannot be tampered with in transit. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}
