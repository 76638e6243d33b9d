/**
 * A real, certified OpenID provider (oidc-provider) started by a test on
 * loopback: discovery, JWKS, client credentials, the device grant (its pages
 * driven from the test with fetch), RFC 8707 resource indicators that make
 * JWT access tokens (RFC 9068, `typ: at+jwt`), refresh tokens, id tokens.
 *
 * Token shapes of real providers are mimicked with extra claims per account
 * (device grant) or per client (client credentials): Entra `roles`, Keycloak
 * `realm_access.roles` and `/group` paths, Auth0 `permissions` with a
 * trailing-slash issuer, Okta `groups` under an `/oauth2/default` path.
 *
 * Stable API (shared with the CLI tests):
 *   const op = await startOidcProvider({ accounts: { alice: { groups: ['ops'] } } });
 *   op.issuer, op.discoveryUrl, op.jwksUri, op.tokenEndpoint, op.deviceAuthorizationEndpoint
 *   await op.clientCredentials({ resource: op.resource })       → TokenResponse
 *   await op.deviceGrant({ account: 'alice', resource: op.resource }) → TokenResponse
 *   await op.startDevice({...}); await op.approveDevice(url, 'alice'); await op.pollDevice({...})
 *   op.hits('/.well-known/openid-configuration') → how many times a path was requested
 *   await op.close()
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

/** Claims added to tokens: to JWT access tokens, id tokens and userinfo. */
export type Claims = Record<string, unknown>;

export interface ResourceServerSpec {
  /** Space-separated scopes this resource server knows. Default `manage:run`. */
  scope?: string;
  /** `aud` of its access tokens; default the resource indicator itself. */
  audience?: string;
  /** `jwt` (default, RFC 9068) or `opaque`. */
  format?: 'jwt' | 'opaque';
  /** Seconds; default 300. */
  ttl?: number;
  /** Signing algorithm of its JWT access tokens; default RS256. */
  alg?: 'RS256' | 'ES256' | 'PS256';
}

export interface ClientSpec {
  clientId: string;
  /** Omitted: a public client (token endpoint auth `none`). */
  clientSecret?: string;
  /** Default: client_credentials for confidential clients; device code + refresh token for public ones. */
  grantTypes?: string[];
  /** Extra claims in this client's client-credentials access tokens (e.g. Entra app `roles`). */
  claims?: Claims;
  /** Space-separated scopes the client may ask for (oidc-provider `scope` client metadata). */
  scope?: string;
  redirectUris?: string[];
}

export interface OidcProviderOptions {
  /** Issuer path, e.g. `/realms/ops` (Keycloak) or `/oauth2/default` (Okta). Default: none. */
  path?: string;
  /** Issuer ends with `/` (Auth0). Default false. */
  trailingSlash?: boolean;
  /** Clients; default {@link defaultClients}. */
  clients?: ClientSpec[];
  /** accountId → extra claims (device grant tokens, id tokens, userinfo). Any account id may sign in; unknown ones get no extra claims. */
  accounts?: Record<string, Claims>;
  /** RFC 8707 resource indicator → resource server; default `{ [DEFAULT_RESOURCE]: {} }`. */
  resources?: Record<string, ResourceServerSpec>;
  /** Resource used when a request names none: default none (then access tokens are opaque, as oidc-provider makes them). */
  defaultResource?: string;
  /** Extra oidc-provider configuration, merged over ours. */
  configuration?: Record<string, unknown>;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  id_token?: string;
  refresh_token?: string;
  [key: string]: unknown;
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval?: number;
}

export interface TokenRequest {
  clientId?: string;
  clientSecret?: string;
  resource?: string | string[];
  scope?: string;
}

export interface TestOidcProvider {
  /** Exactly as tokens carry it in `iss` (trailing slash included when asked for). */
  issuer: string;
  /** Scheme, host and port, no path, no trailing slash. */
  origin: string;
  discoveryUrl: string;
  jwksUri: string;
  tokenEndpoint: string;
  deviceAuthorizationEndpoint: string;
  /** The default resource indicator (`DEFAULT_RESOURCE`) unless `resources` named others: the first one. */
  resource: string;
  /** The default clients' ids and secret. */
  clients: { ci: { clientId: string; clientSecret: string }; cli: { clientId: string } };
  /** The underlying oidc-provider instance. */
  provider: any;
  clientCredentials(request?: TokenRequest): Promise<TokenResponse>;
  /** Device authorization request (RFC 8628 §3.1). */
  startDevice(request?: TokenRequest): Promise<DeviceAuthorization>;
  /** Drives the provider's pages as a user in a browser would: enter the code, confirm, sign in as `account`, consent; `deny` aborts at the confirm step (the device code then answers `access_denied`). */
  approveDevice(verificationUriComplete: string, account: string, options?: { deny?: boolean }): Promise<void>;
  /** One device token request: the token response, or the error body (e.g. `authorization_pending`). */
  pollDevice(deviceCode: string, request?: TokenRequest): Promise<TokenResponse | { error: string; error_description?: string }>;
  /** startDevice + approveDevice + pollDevice. */
  deviceGrant(request: TokenRequest & { account: string }): Promise<TokenResponse>;
  refresh(refreshToken: string, request?: TokenRequest): Promise<TokenResponse>;
  /** Times a path (no query) was requested, e.g. `/.well-known/openid-configuration`, relative to the issuer path. */
  hits(path: string): number;
  /** Replace the extra claims of an account (takes effect for the next tokens). */
  setAccountClaims(account: string, claims: Claims): void;
  close(): Promise<void>;
}

export const DEFAULT_RESOURCE = 'https://mm.test/api';
export const CI_CLIENT = { clientId: 'mm-ci', clientSecret: 'mm-ci-secret-0123456789abcdef0123456789' };
export const CLI_CLIENT = { clientId: 'mm-cli' };
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export function defaultClients(): ClientSpec[] {
  return [
    { ...CI_CLIENT, grantTypes: ['client_credentials'] },
    { ...CLI_CLIENT, grantTypes: [DEVICE_GRANT, 'refresh_token'] },
  ];
}

/** The decoded header and payload of a JWT (no verification). */
export function decodeJwt(token: string): { header: Record<string, any>; payload: Record<string, any> } {
  const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
  return { header, payload };
}

let quietened = false;
/** oidc-provider warns about its development-only features (in-memory adapter, dev interactions): expected here. */
function quietenDevWarnings() {
  if (quietened) return;
  quietened = true;
  const warn = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING')) return;
    warn(...args);
  };
  const info = console.info.bind(console);
  console.info = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider NOTICE')) return;
    info(...args);
  };
}

/**
 * oidc-provider's `getResourceServerInfo` for these resource servers: an unknown
 * indicator is `InvalidTarget`; `errors` is oidc-provider's own error module.
 */
export function resourceServerInfo(resources: Record<string, ResourceServerSpec>, errors: { InvalidTarget: new () => Error }) {
  return async (_ctx: unknown, indicator: string) => {
    const spec = resources[indicator];
    if (!spec) throw new errors.InvalidTarget();
    return {
      scope: spec.scope ?? 'manage:run',
      audience: spec.audience ?? indicator,
      accessTokenTTL: spec.ttl ?? 300,
      accessTokenFormat: spec.format ?? 'jwt',
      ...(spec.format === 'opaque' ? {} : { jwt: { sign: { alg: spec.alg ?? 'RS256' } } }),
    };
  };
}

export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<TestOidcProvider> {
  quietenDevWarnings();
  // Imported here, after the warnings filter (it warns at import on Node 20), and untyped: it ships no declarations.
  const oidcProviderModule = 'oidc-provider';
  const { default: Provider, errors: oidcErrors } = (await import(oidcProviderModule)) as { default: any; errors: any };
  const hits = new Map<string, number>();
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const path = (options.path ?? '').replace(/\/+$/, '');
  const base = `${origin}${path}`;
  const issuer = options.trailingSlash ? `${base}/` : base;

  const accounts = new Map<string, Claims>(Object.entries(options.accounts ?? {}));
  const clientSpecs = options.clients ?? defaultClients();
  const clientClaims = new Map(clientSpecs.map((c) => [c.clientId, c.claims ?? {}]));
  const resources = options.resources ?? { [DEFAULT_RESOURCE]: {} };
  const firstResource = Object.keys(resources)[0] ?? DEFAULT_RESOURCE;

  const [rsa, ec] = await Promise.all([generateKeyPair('RS256', { extractable: true }), generateKeyPair('ES256', { extractable: true })]);
  const keys = [
    { ...(await exportJWK(rsa.privateKey)), kid: `rs-${Math.random().toString(36).slice(2, 8)}`, alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.privateKey)), kid: `es-${Math.random().toString(36).slice(2, 8)}`, alg: 'ES256', use: 'sig' },
  ];
  const rsaKey = await generateKeyPair('PS256', { extractable: true });
  keys.push({ ...(await exportJWK(rsaKey.privateKey)), kid: `ps-${Math.random().toString(36).slice(2, 8)}`, alg: 'PS256', use: 'sig' });

  const configuration = {
    clients: clientSpecs.map((c) => ({
      client_id: c.clientId,
      ...(c.clientSecret ? { client_secret: c.clientSecret, token_endpoint_auth_method: 'client_secret_basic' } : { token_endpoint_auth_method: 'none' }),
      grant_types: c.grantTypes ?? (c.clientSecret ? ['client_credentials'] : [DEVICE_GRANT, 'refresh_token']),
      response_types: c.redirectUris ? ['code'] : [],
      redirect_uris: c.redirectUris ?? [],
      ...(c.scope ? { scope: c.scope } : {}),
    })),
    jwks: { keys },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    pkce: { required: () => false },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf ?? options.defaultResource,
        useGrantedResource: async () => true,
        getResourceServerInfo: resourceServerInfo(resources, oidcErrors),
      },
    },
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => ({ sub: id, preferred_username: id, ...(accounts.get(id) ?? {}) }),
    }),
    extraTokenClaims: async (_ctx: unknown, token: any) =>
      token.accountId ? { ...(accounts.get(token.accountId) ?? {}) } : { ...(clientClaims.get(token.clientId) ?? {}) },
    loadExistingGrant: undefined,
    ttl: { DeviceCode: 600, AccessToken: 300, ClientCredentials: 300, IdToken: 300, RefreshToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
    renderError: async (ctx: any, out: any) => {
      ctx.type = 'json';
      ctx.body = out;
    },
    ...options.configuration,
  };
  const provider = new Provider(issuer, configuration);
  // oidc-provider prints a warning per dev-only feature; tests do not need them.
  provider.on?.('server_error', () => {});
  const callback = provider.callback();
  handler = (req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (path && !url.pathname.startsWith(`${path}/`) && url.pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    const relative = url.pathname.slice(path.length) || '/';
    hits.set(relative, (hits.get(relative) ?? 0) + 1);
    if (path) {
      (req as any).originalUrl = req.url;
      req.url = `${relative}${url.search}`;
    }
    callback(req, res);
  };

  const endpoint = (name: string) => `${base}${name}`;
  const tokenEndpoint = endpoint('/token');
  const deviceAuthorizationEndpoint = endpoint('/device/auth');

  async function form(url: string, body: Record<string, string | string[] | undefined>, auth?: { clientId: string; clientSecret?: string }) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(body)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) params.append(key, item);
    }
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth?.clientSecret) {
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(auth.clientId)}:${encodeURIComponent(auth.clientSecret)}`).toString('base64')}`;
    } else if (auth) params.set('client_id', auth.clientId);
    const response = await fetch(url, { method: 'POST', headers, body: params });
    return { status: response.status, body: (await response.json()) as any };
  }

  function clientOf(request: TokenRequest, fallback: { clientId: string; clientSecret?: string }) {
    return request.clientId ? { clientId: request.clientId, ...(request.clientSecret ? { clientSecret: request.clientSecret } : {}) } : fallback;
  }

  const ok = (what: string, answer: { status: number; body: any }) => {
    if (answer.status !== 200) throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };

  const op: TestOidcProvider = {
    issuer,
    origin,
    discoveryUrl: endpoint('/.well-known/openid-configuration'),
    jwksUri: endpoint('/jwks'),
    tokenEndpoint,
    deviceAuthorizationEndpoint,
    resource: firstResource,
    clients: { ci: { ...CI_CLIENT }, cli: { ...CLI_CLIENT } },
    provider,
    async clientCredentials(request = {}) {
      return ok(
        'client credentials',
        await form(tokenEndpoint, { grant_type: 'client_credentials', resource: request.resource, scope: request.scope ?? 'manage:run' }, clientOf(request, CI_CLIENT)),
      );
    },
    async startDevice(request = {}) {
      return ok(
        'device authorization',
        await form(deviceAuthorizationEndpoint, { resource: request.resource, scope: request.scope ?? 'openid offline_access manage:run' }, clientOf(request, CLI_CLIENT)),
      );
    },
    async approveDevice(verificationUriComplete, account, approveOptions = {}) {
      await drivePages(verificationUriComplete, account, approveOptions.deny ?? false);
    },
    async pollDevice(deviceCode, request = {}) {
      const answer = await form(tokenEndpoint, { grant_type: DEVICE_GRANT, device_code: deviceCode, resource: request.resource }, clientOf(request, CLI_CLIENT));
      return answer.body;
    },
    async deviceGrant(request) {
      const device = await op.startDevice(request);
      await op.approveDevice(device.verification_uri_complete, request.account);
      const answer = await op.pollDevice(device.device_code, request);
      if ('error' in answer && answer.error) throw new Error(`device grant: ${JSON.stringify(answer)}`);
      return answer as TokenResponse;
    },
    async refresh(refreshToken, request = {}) {
      return ok(
        'refresh',
        await form(tokenEndpoint, { grant_type: 'refresh_token', refresh_token: refreshToken, resource: request.resource, scope: request.scope }, clientOf(request, CLI_CLIENT)),
      );
    },
    hits: (p) => hits.get(p) ?? 0,
    setAccountClaims(account, claims) {
      accounts.set(account, claims);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return op;

  /**
   * A browser's walk through the device pages: follows redirects by hand with a
   * cookie jar, submits the auto-post and confirm forms, the dev login form
   * (any login, any password) and the consent form.
   */
  async function drivePages(start: string, account: string, deny: boolean): Promise<void> {
    const jar = new Map<string, string>();
    let next: { url: string; method: 'GET' | 'POST'; body?: URLSearchParams } | undefined = { url: start, method: 'GET' };
    let aborted = false;
    for (let step = 0; next && step < 30; step++) {
      const response: Response = await fetch(next.url, {
        method: next.method,
        redirect: 'manual',
        headers: {
          cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
          ...(next.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        ...(next.body ? { body: next.body } : {}),
      });
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name);
        else jar.set(name, value);
      }
      const current: string = next.url;
      next = undefined;
      if (response.status >= 300 && response.status < 400) {
        next = { url: new URL(response.headers.get('location')!, current).href, method: 'GET' };
        continue;
      }
      const html = await response.text();
      if (aborted) return;
      if (response.status !== 200) throw new Error(`device pages: HTTP ${response.status} at ${current}: ${html.slice(0, 300)}`);
      const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)];
      if (forms.length === 0) {
        if (/success|signed in|completed/i.test(html) || deny) return;
        throw new Error(`device pages: no form and no success at ${current}: ${html.replace(/<[^>]+>/g, ' ').slice(0, 300)}`);
      }
      const [, attributes, inner] = forms[0]!;
      const action = new URL(attr(attributes!, 'action') ?? current, current).href;
      const fields = new URLSearchParams();
      for (const [input] of inner!.matchAll(/<input\b[^>]*>/gi)) {
        const name = attr(input, 'name');
        const value = attr(input, 'value');
        if (name && value !== undefined) fields.set(name, value);
      }
      const prompt = fields.get('prompt');
      if (prompt === 'login') {
        fields.set('login', account);
        fields.set('password', 'any');
      }
      if (fields.has('confirm') && deny) {
        fields.delete('confirm');
        fields.set('abort', 'yes');
        aborted = true;
      }
      next = { url: action, method: 'POST', body: fields };
    }
    if (next) throw new Error('device pages: too many steps');
  }
}

function attr(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(tag);
  return match ? match[1]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#x2F;/g, '/').replace(/&#39;/g, "'") : undefined;
}
