/**
 * The configuration of middle-management, parsed once from the environment at
 * cold start (CONTRACT §4). Any misconfiguration throws a {@link ConfigError}
 * naming the variable, so a broken deployment fails at init instead of serving.
 */
import { isIP } from 'node:net';

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

export interface ManageConfig {
  /** Commands that may run (`MANAGE_ALLOW_LIST`). */
  allowList: ReadonlySet<string>;
  cognito?: CognitoIssuerConfig;
  /** Trusted OIDC issuers: `MANAGE_JWT_ISSUER` (if set) first, then `MANAGE_JWT_ISSUERS`. */
  oidcIssuers: OidcIssuerConfig[];
  /** command → groups of which the caller needs one (`MANAGE_COMMAND_GROUPS`). */
  commandGroups: ReadonlyMap<string, string[]>;
  /** Groups that may read every audit record (`MANAGE_AUDITOR_GROUPS`). */
  auditorGroups: string[];
  auditTable: string;
  /** Default 65536. */
  maxBodyBytes: number;
  /** Cap on a synchronous HTTP run, default 28000 (below API Gateway's 30 s). */
  httpTimeLimitMs: number;
  /** Where the audit store is, when not the region's DynamoDB (`AWS_ENDPOINT_URL_DYNAMODB`). */
  dynamoEndpoint?: string;
  region: string;
  /** Commands that may not run twice at once, beside those that declare it (`MANAGE_EXCLUSIVE`). */
  exclusive: ReadonlySet<string>;
  /** command → groups whose members may approve it (`MANAGE_APPROVAL`). */
  approval: ReadonlyMap<string, string[]>;
  /** Default 86400. */
  idempotencyTtlSeconds: number;
  /** Mutable state: idempotency keys, leases, pending approvals (`MANAGE_STATE_TABLE`, default `<audit table>-state`). */
  stateTable: string;
  /** How long a request waits for approval before it expires (`MANAGE_APPROVAL_TTL_SECONDS`, default 3600). */
  approvalTtlSeconds: number;
  /**
   * Keys the audit's hash chains and the HMACs of sensitive arguments
   * (`MANAGE_AUDIT_HMAC_KEY`, at least 32 characters). Without it the chains
   * are plain SHA-256: they show accidental edits, not a forger's.
   */
  auditHmacKey?: Buffer;
  /** This function's own name, for worker invocations (`AWS_LAMBDA_FUNCTION_NAME`, set by Lambda). */
  functionName?: string;
  /** `AWS_ENDPOINT_URL_LAMBDA`: where worker invocations go (serverless-offline locally). */
  lambdaEndpoint?: string;
  /** `AWS_ENDPOINT_URL_SFN`: where task tokens are reported, when not the region's Step Functions. */
  sfnEndpoint?: string;
  /** The web console's sign-in settings (`MANAGE_CONSOLE_*`); absent: the console page says it is not set up. */
  console?: ConsoleConfig;
}

/** How the web console signs in (authorization code + PKCE in the browser). */
export interface ConsoleConfig {
  /** A public app client (no secret) of the issuer (`MANAGE_CONSOLE_CLIENT_ID`). */
  clientId: string;
  /** Where the issuer sends the browser back (`MANAGE_CONSOLE_REDIRECT_URI`); default: the console's own URL. */
  redirectUri?: string;
  /** The issuer the console signs in with (`MANAGE_CONSOLE_ISSUER`); default the first trusted OIDC issuer (MANAGE_JWT_ISSUER, else MANAGE_JWT_ISSUERS[0]), else the Cognito pool. */
  issuer: string;
  /** `MANAGE_CONSOLE_SCOPES`, default `openid`. */
  scopes: string;
  /** A resource indicator (RFC 8707) sent with the sign-in (`MANAGE_CONSOLE_RESOURCE`). */
  resource?: string;
  /** Which token the console sends (`MANAGE_CONSOLE_TOKEN_USE`, `access` default, or `id`). */
  tokenUse: 'access' | 'id';
  /** Origins besides the issuer's that the page may call, e.g. a Cognito domain (`MANAGE_CONSOLE_AUTH_ORIGINS`). */
  authOrigins: string[];
}

export const configDefaults = {
  maxBodyBytes: 65536,
  httpTimeLimitMs: 28000,
  idempotencyTtlSeconds: 86400,
  approvalTtlSeconds: 3600,
  cognitoTokenUse: 'access',
  region: 'us-east-1',
} as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

export type Environment = Record<string, string | undefined>;

/**
 * Parse the environment into a {@link ManageConfig}.
 *
 * @param env - usually `process.env`
 * @param knownCommands - the names of the commands this bundle ships; the allowlist may name no other
 * @throws ConfigError naming the first variable that is wrong
 */
export function loadConfig(env: Environment, knownCommands: Iterable<string>): ManageConfig {
  const known = new Set(knownCommands);
  const allowList = new Set(list(env, 'MANAGE_ALLOW_LIST'));
  for (const name of allowList) {
    if (!known.has(name)) {
      throw new ConfigError('MANAGE_ALLOW_LIST', `names "${name}", which is not a command (known: ${[...known].join(', ')})`);
    }
  }

  const groupsClaims = claimPaths(text(env, 'MANAGE_JWT_GROUPS_CLAIM'), 'MANAGE_JWT_GROUPS_CLAIM');
  const cognito = cognitoConfig(env, groupsClaims);
  const oidcIssuers = oidcConfigs(env, groupsClaims);
  if (!cognito && oidcIssuers.length === 0) {
    throw new ConfigError(
      'MANAGE_JWT_ISSUER',
      'no token issuer is configured; set MANAGE_JWT_ISSUER (with MANAGE_JWT_AUDIENCE), MANAGE_JWT_ISSUERS or MANAGE_COGNITO_USER_POOL_ID',
    );
  }

  const auditTable = text(env, 'MANAGE_AUDIT_TABLE');
  if (!auditTable) throw new ConfigError('MANAGE_AUDIT_TABLE', 'is required: the DynamoDB table of the audit trail');

  const hmacKey = text(env, 'MANAGE_AUDIT_HMAC_KEY');
  if (hmacKey !== undefined && hmacKey.length < 32) {
    throw new ConfigError('MANAGE_AUDIT_HMAC_KEY', 'must be at least 32 characters (e.g. 32 random bytes, base64)');
  }

  const dynamoEndpoint = text(env, 'AWS_ENDPOINT_URL_DYNAMODB');
  if (dynamoEndpoint) url(dynamoEndpoint, 'AWS_ENDPOINT_URL_DYNAMODB');

  return {
    allowList,
    ...(cognito ? { cognito } : {}),
    oidcIssuers,
    commandGroups: groupMap(env, 'MANAGE_COMMAND_GROUPS', known),
    auditorGroups: list(env, 'MANAGE_AUDITOR_GROUPS'),
    auditTable,
    maxBodyBytes: integer(env, 'MANAGE_MAX_BODY_BYTES', configDefaults.maxBodyBytes, 1, 10 * 1024 * 1024),
    httpTimeLimitMs: integer(env, 'MANAGE_HTTP_TIME_LIMIT_MS', configDefaults.httpTimeLimitMs, 100, 900_000),
    ...(dynamoEndpoint ? { dynamoEndpoint } : {}),
    region: text(env, 'AWS_REGION') ?? text(env, 'AWS_DEFAULT_REGION') ?? configDefaults.region,
    exclusive: new Set(commandNames(env, 'MANAGE_EXCLUSIVE', known)),
    approval: groupMap(env, 'MANAGE_APPROVAL', known),
    idempotencyTtlSeconds: integer(env, 'MANAGE_IDEMPOTENCY_TTL_SECONDS', configDefaults.idempotencyTtlSeconds, 1, 366 * 86400),
    stateTable: text(env, 'MANAGE_STATE_TABLE') ?? `${auditTable}-state`,
    approvalTtlSeconds: integer(env, 'MANAGE_APPROVAL_TTL_SECONDS', configDefaults.approvalTtlSeconds, 1, 30 * 86400),
    ...(hmacKey ? { auditHmacKey: Buffer.from(hmacKey, 'utf8') } : {}),
    ...optionalUrl(env, 'AWS_ENDPOINT_URL_LAMBDA', 'lambdaEndpoint'),
    ...optionalUrl(env, 'AWS_ENDPOINT_URL_SFN', 'sfnEndpoint'),
    ...(text(env, 'AWS_LAMBDA_FUNCTION_NAME') ? { functionName: text(env, 'AWS_LAMBDA_FUNCTION_NAME') } : {}),
    ...consoleConfig(env, oidcIssuers[0], cognito),
  };
}

function consoleConfig(env: Environment, oidc: OidcIssuerConfig | undefined, cognito: CognitoIssuerConfig | undefined): { console?: ConsoleConfig } {
  const clientId = text(env, 'MANAGE_CONSOLE_CLIENT_ID');
  if (!clientId) return {};
  const cognitoIssuer = cognito ? `https://cognito-idp.${cognito.userPoolId.split('_')[0]}.amazonaws.com/${cognito.userPoolId}` : undefined;
  const issuer = text(env, 'MANAGE_CONSOLE_ISSUER') ?? oidc?.issuer ?? cognitoIssuer!;
  url(issuer, 'MANAGE_CONSOLE_ISSUER');
  const redirectUri = text(env, 'MANAGE_CONSOLE_REDIRECT_URI');
  if (redirectUri) url(redirectUri, 'MANAGE_CONSOLE_REDIRECT_URI');
  const resource = text(env, 'MANAGE_CONSOLE_RESOURCE');
  const tokenUse = text(env, 'MANAGE_CONSOLE_TOKEN_USE') ?? 'access';
  if (tokenUse !== 'access' && tokenUse !== 'id') throw new ConfigError('MANAGE_CONSOLE_TOKEN_USE', `must be "access" or "id", not "${tokenUse}"`);
  const authOrigins = list(env, 'MANAGE_CONSOLE_AUTH_ORIGINS').map((origin) => url(origin, 'MANAGE_CONSOLE_AUTH_ORIGINS').origin);
  return {
    console: {
      clientId,
      issuer,
      scopes: text(env, 'MANAGE_CONSOLE_SCOPES') ?? 'openid',
      tokenUse,
      authOrigins,
      ...(redirectUri ? { redirectUri } : {}),
      ...(resource ? { resource } : {}),
    },
  };
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
  const tokenUse = text(env, 'MANAGE_COGNITO_TOKEN_USE') ?? configDefaults.cognitoTokenUse;
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

function text(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function list(env: Environment, name: string): string[] {
  return (text(env, name) ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function commandNames(env: Environment, name: string, known: Set<string>): string[] {
  const names = list(env, name);
  for (const command of names) {
    if (!known.has(command)) throw new ConfigError(name, `names "${command}", which is not a command`);
  }
  return names;
}

function integer(env: Environment, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

function optionalUrl<K extends string>(env: Environment, name: string, key: K): Partial<Record<K, string>> {
  const value = text(env, name);
  if (!value) return {};
  url(value, name);
  return { [key]: value } as Partial<Record<K, string>>;
}

function url(value: string, name: string, what = name): URL {
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('not http(s)');
    return parsed;
  } catch {
    throw new ConfigError(name, `${what === name ? '' : `${what}: `}"${value}" is not an http(s) URL`);
  }
}

function groupMap(env: Environment, name: string, known: Set<string>): ReadonlyMap<string, string[]> {
  const raw = text(env, name);
  if (!raw) return new Map();
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'is not valid JSON (expected an object such as {"sleep":["ops"]})');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(name, 'must be a JSON object of command → array of group names');
  }
  const map = new Map<string, string[]>();
  for (const [command, groups] of Object.entries(parsed)) {
    if (!known.has(command)) throw new ConfigError(name, `names "${command}", which is not a command`);
    if (!Array.isArray(groups) || groups.length === 0 || !groups.every((g) => typeof g === 'string' && g.length > 0)) {
      throw new ConfigError(name, `"${command}" must map to a non-empty array of group names`);
    }
    map.set(command, groups as string[]);
  }
  return map;
}
