/**
 * OAuth 2.0 / OIDC sign-in over plain `fetch`: client credentials (RFC 6749
 * §4.4), refresh (§6), and the device authorization grant (RFC 8628) with the
 * endpoints discovered from the issuer's `/.well-known/openid-configuration`.
 * An RFC 8707 `resource` (one or more) and an `audience` go with every request
 * that mints an access token (device authorization, device-code polls, client
 * credentials, refresh), so that the issuer returns a JWT for this API instead
 * of an opaque token.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, Exit, notAuthenticated } from '../errors.js';
import { checkUrl } from '../config.js';
import { registerSecret } from '../io.js';

export interface TokenSet {
  accessToken: string;
  idToken?: string;
  refreshToken?: string;
  expiresIn?: number;
  /** The `token_type` the issuer gave (for messages). */
  tokenType?: string;
}

/** Form fields; an array value repeats the field (RFC 8707 allows several `resource`s). */
export type FormParams = Record<string, string | string[] | undefined>;

export interface ClientAuth {
  id: string;
  secret?: string;
  auth?: 'basic' | 'post';
}

/** `resource` as a list (a profile may hold one string or several). */
export function resourceList(resource: string | string[] | undefined): string[] {
  if (resource === undefined) return [];
  return (Array.isArray(resource) ? resource : [resource]).filter((r) => r !== '');
}

function toForm(params: FormParams): URLSearchParams {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) form.append(name, item);
  }
  return form;
}

/** Client authentication (RFC 6749 §2.3.1): HTTP Basic with both parts form-encoded, or form fields. */
function authenticate(form: URLSearchParams, headers: Record<string, string>, client: ClientAuth): void {
  if (client.secret !== undefined && (client.auth ?? 'basic') === 'basic') {
    const user = encodeURIComponent(client.id);
    const pass = encodeURIComponent(client.secret);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  } else {
    form.set('client_id', client.id);
    if (client.secret !== undefined) form.set('client_secret', client.secret);
  }
}

const AUTH_TIMEOUT_MS = 30_000;

/** POST a form to a token endpoint; an OAuth error answer becomes exit 3 with the server's description. */
export async function tokenRequest(endpoint: string, params: FormParams, client: ClientAuth): Promise<TokenSet> {
  registerSecret(client.secret);
  const form = toForm(params);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  authenticate(form, headers, client);
  const { status, body } = await postForAuth(endpoint, { headers, body: form.toString() });
  if (status >= 200 && status < 300 && typeof body?.access_token === 'string') {
    return toTokenSet(body);
  }
  throw oauthError(status, body, 'token endpoint');
}

function toTokenSet(body: Record<string, unknown>): TokenSet {
  const set: TokenSet = { accessToken: body.access_token as string };
  if (typeof body.id_token === 'string') set.idToken = body.id_token;
  if (typeof body.refresh_token === 'string') set.refreshToken = body.refresh_token;
  const expiresIn = Number(body.expires_in);
  if (Number.isFinite(expiresIn) && expiresIn > 0) set.expiresIn = expiresIn;
  if (typeof body.token_type === 'string') set.tokenType = body.token_type;
  registerSecret(set.accessToken);
  registerSecret(set.idToken);
  registerSecret(set.refreshToken);
  return set;
}

export class OAuthError extends CliError {
  constructor(
    readonly oauthCode: string,
    message: string,
    status: number,
  ) {
    super(status >= 500 ? Exit.Service : Exit.NotAuthenticated, status >= 500 ? 'ServiceError' : 'NotAuthenticated', message, { status });
  }
}

function oauthError(status: number, body: Record<string, unknown> | undefined, what: string): OAuthError {
  const code = typeof body?.error === 'string' ? body.error : `http_${status}`;
  const description = typeof body?.error_description === 'string' ? `: ${body.error_description}` : '';
  return new OAuthError(code, `Sign-in failed at the ${what} (${code}${description}).`, status);
}

export interface ClientCredentialsOptions {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  audience?: string;
  resource?: string | string[];
  clientAuth?: 'basic' | 'post';
}

export function clientCredentials(options: ClientCredentialsOptions): Promise<TokenSet> {
  registerSecret(options.clientSecret);
  return tokenRequest(
    checkUrl(options.tokenUrl, 'token endpoint'),
    {
      grant_type: 'client_credentials',
      ...(options.scope ? { scope: options.scope } : {}),
      ...(options.audience ? { audience: options.audience } : {}),
      resource: resourceList(options.resource),
    },
    { id: options.clientId, secret: options.clientSecret, auth: options.clientAuth ?? 'basic' },
  );
}

/** RFC 6749 §6, with the RFC 8707 resource(s) the first token was for (else some issuers answer with an opaque token). */
export function refreshGrant(
  tokenUrl: string,
  refreshToken: string,
  client: ClientAuth,
  extra: { resource?: string | string[] } = {},
): Promise<TokenSet> {
  return tokenRequest(
    tokenUrl,
    { grant_type: 'refresh_token', refresh_token: refreshToken, resource: resourceList(extra.resource) },
    client.secret === undefined ? { id: client.id, auth: 'post' } : client,
  );
}

export interface Discovery {
  token_endpoint: string;
  device_authorization_endpoint?: string;
}

export async function discover(issuer: string): Promise<Discovery> {
  const url = `${checkUrl(issuer, 'issuer')}/.well-known/openid-configuration`;
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(AUTH_TIMEOUT_MS) });
  } catch (error) {
    throw networkError(url, error);
  }
  const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!response.ok || typeof body?.token_endpoint !== 'string') {
    throw new CliError(Exit.Service, 'ServiceError', `Cannot read the issuer's OpenID configuration at ${url} (HTTP ${response.status}).`);
  }
  return body as unknown as Discovery;
}

export interface DeviceCodeInfo {
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  expiresIn: number;
}

export interface DeviceGrantOptions {
  issuer: string;
  clientId: string;
  /** A confidential client's secret (some issuers, e.g. Google, require one for the device grant). */
  clientSecret?: string;
  clientAuth?: 'basic' | 'post';
  scope?: string;
  audience?: string;
  resource?: string | string[];
  /** Told the code and where to enter it. */
  notify(info: DeviceCodeInfo): void;
  /** Called before each poll, e.g. to update a spinner. */
  onPoll?(): void;
}

/** RFC 8628: ask for a device code, show it, poll the token endpoint until the user approves, refuses or the code expires. */
export async function deviceGrant(options: DeviceGrantOptions): Promise<TokenSet & { tokenEndpoint: string }> {
  const discovery = await discover(options.issuer);
  if (!discovery.device_authorization_endpoint) {
    throw new CliError(
      Exit.Usage,
      'UsageError',
      `The issuer ${options.issuer} does not offer the device authorization grant (no device_authorization_endpoint in its OpenID configuration).`,
    );
  }
  const deviceEndpoint = checkUrl(discovery.device_authorization_endpoint, 'device authorization endpoint');
  const tokenEndpoint = checkUrl(discovery.token_endpoint, 'token endpoint');
  const client: ClientAuth =
    options.clientSecret === undefined
      ? { id: options.clientId, auth: 'post' }
      : { id: options.clientId, secret: options.clientSecret, auth: options.clientAuth ?? 'basic' };
  registerSecret(options.clientSecret);
  const resource = resourceList(options.resource);
  const form = toForm({ scope: options.scope ?? 'openid', audience: options.audience || undefined, resource });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  authenticate(form, headers, client);
  const { status, body } = await postForAuth(deviceEndpoint, { headers, body: form.toString() });
  if (status < 200 || status >= 300 || typeof body?.device_code !== 'string' || typeof body.user_code !== 'string') {
    throw oauthError(status, body, 'device authorization endpoint');
  }
  const deviceCode = body.device_code;
  registerSecret(deviceCode);
  const verificationUri = String(body.verification_uri ?? body.verification_url ?? '');
  const expiresIn = Number(body.expires_in) > 0 ? Number(body.expires_in) : 600;
  options.notify({
    userCode: body.user_code,
    verificationUri,
    ...(typeof body.verification_uri_complete === 'string' ? { verificationUriComplete: body.verification_uri_complete } : {}),
    expiresIn,
  });
  // RFC 8628 §3.2: 5 seconds unless the server says otherwise.
  let intervalMs = (typeof body.interval === 'number' && body.interval >= 0 ? body.interval : 5) * 1000;
  const deadline = Date.now() + expiresIn * 1000;
  while (Date.now() < deadline) {
    await sleep(Math.max(intervalMs, 100));
    options.onPoll?.();
    try {
      const tokens = await tokenRequest(
        tokenEndpoint,
        { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, resource },
        client,
      );
      return { ...tokens, tokenEndpoint };
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      if (error.oauthCode === 'authorization_pending') continue;
      if (error.oauthCode === 'slow_down') {
        intervalMs += 5000;
        continue;
      }
      if (error.oauthCode === 'access_denied') throw notAuthenticated('Sign-in was refused in the browser.');
      if (error.oauthCode === 'expired_token') break;
      throw error;
    }
  }
  throw notAuthenticated('The sign-in code expired before it was used; run the command again.');
}

async function postForAuth(
  url: string,
  init: { headers: Record<string, string>; body: string },
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', ...init, signal: AbortSignal.timeout(AUTH_TIMEOUT_MS) });
  } catch (error) {
    throw networkError(url, error);
  }
  const text = await response.text();
  let body: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  return { status: response.status, body };
}

export function networkError(url: string, error: unknown): CliError {
  return new CliError(Exit.Service, 'NetworkError', `Cannot reach ${new URL(url).origin}: ${describeNetworkError(error)}.`, { cause: error });
}

export function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code) return cause.code;
  if ((error as Error)?.name === 'TimeoutError') return 'timed out';
  return cause?.message ?? (error as Error)?.message ?? String(error);
}
