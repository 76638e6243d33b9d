/**
 * A development OpenID provider for the local stack and the browser tests,
 * built on `oidc-provider` (a certified implementation), never to be deployed:
 *
 * - authorization code + PKCE for the web console (a public client), with a real
 *   sign-in form of our own (user name + password; see {@link DEV_ACCOUNTS});
 * - the device authorization grant for `mm login` (public client `mm-cli`);
 * - client credentials for CI (`mm-ci`, secret `mm-ci-secret`);
 * - JWT access tokens for the API's audience (a resource indicator, RFC 8707),
 *   carrying `groups` and `username` claims of the account;
 * - the JWKS at `/.well-known/jwks.json` (where the API looks by default);
 * - {@link signIssuerToken}: a token for any sub/groups signed with the issuer's
 *   own key, without a sign-in (for `npm run token`), accepted exactly like one
 *   the provider issued.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type Provider from 'oidc-provider';

/** A resource indicator must be an absolute URI. */
export const OIDC_DEV_AUDIENCE = 'urn:middle-management:local';
export const CONSOLE_CLIENT_ID = 'mm-console';
export const CLI_CLIENT_ID = 'mm-cli';
export const CI_CLIENT_ID = 'mm-ci';
export const CI_CLIENT_SECRET = 'mm-ci-secret';
const ALG = 'RS256';
const HOST = '127.0.0.1';

/**
 * The development accounts: user name → groups. Their password is their user name
 * (it is a development issuer; the form is real so that the browser flow is).
 * Any other user name signs in too, with no groups.
 */
export const DEV_ACCOUNTS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  developer: ['ops', 'approvers', 'auditors'],
  alice: ['ops'],
  bob: ['ops', 'approvers'],
  audrey: ['auditors'],
});

export interface OidcIssuerState {
  /** The `iss` of every token. */
  issuer: string;
  audience: string;
  kid: string;
  privateJwk: JWK;
}

/** A fresh key for an issuer at `issuer` (e.g. `http://127.0.0.1:3005`). */
export async function createOidcIssuerState(issuer: string, audience = OIDC_DEV_AUDIENCE): Promise<OidcIssuerState> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true, modulusLength: 2048 });
  const kid = randomUUID();
  return { issuer: issuer.replace(/\/+$/, ''), audience, kid, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALG, use: 'sig' } };
}

export interface IssuerTokenOptions {
  sub?: string;
  groups?: readonly string[];
  username?: string;
  /** Seconds; default one hour. */
  expiresIn?: number;
  /** Added to the access token, e.g. `scope`. */
  claims?: Record<string, unknown>;
}

/** A token as the provider would issue for the API, for `npm run token` and tests. */
export async function signIssuerToken(state: OidcIssuerState, options: IssuerTokenOptions = {}): Promise<string> {
  const sub = options.sub ?? 'developer';
  const key = await importJWK(state.privateJwk, ALG);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    ...options.claims,
    groups: [...(options.groups ?? DEV_ACCOUNTS[sub] ?? [])],
    username: options.username ?? sub,
    client_id: CLI_CLIENT_ID,
  })
    .setProtectedHeader({ alg: ALG, kid: state.kid, typ: 'at+jwt' })
    .setIssuer(state.issuer)
    .setAudience(state.audience)
    .setSubject(sub)
    .setIssuedAt(now)
    .setJti(randomUUID())
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(key);
}

export interface OidcIssuerOptions {
  /** Where the console may be sent back to (its `/__manage__/console` URLs). */
  consoleRedirectUris?: string[];
  /** Default {@link DEV_ACCOUNTS}. */
  accounts?: Readonly<Record<string, readonly string[]>>;
  /** Access token lifetime in seconds, default 3600. */
  accessTokenTtl?: number;
}

export interface RunningOidcIssuer {
  issuer: string;
  audience: string;
  state: OidcIssuerState;
  server: Server;
  /** {@link signIssuerToken} with this issuer's key. */
  sign(options?: IssuerTokenOptions): Promise<string>;
  close(): Promise<void>;
}

/**
 * Serves the provider on 127.0.0.1. With no `state`, a fresh key is made and the
 * port is `port` (0: any free one).
 */
export async function startOidcIssuer(
  options: OidcIssuerOptions & { state?: OidcIssuerState; port?: number } = {},
): Promise<RunningOidcIssuer> {
  const accounts = options.accounts ?? DEV_ACCOUNTS;
  let dispatch: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => dispatch(req, res));
  const port = options.state ? Number(new URL(options.state.issuer).port) : (options.port ?? 0);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const issuer = `http://${HOST}:${(server.address() as AddressInfo).port}`;
  const state = options.state ?? (await createOidcIssuerState(issuer));
  const audience = state.audience;

  const Provider = await loadProvider();
  const provider = quietly(() => new Provider(issuer, {
    clients: [
      {
        client_id: CONSOLE_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: options.consoleRedirectUris?.length ? options.consoleRedirectUris : ['http://localhost:3000/__manage__/console', 'http://127.0.0.1:3000/__manage__/console'],
      },
      {
        client_id: CLI_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: CI_CLIENT_ID,
        client_secret: CI_CLIENT_SECRET,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'manage',
      },
    ],
    jwks: { keys: [state.privateJwk] },
    routes: { jwks: '/.well-known/jwks.json' },
    scopes: ['openid', 'profile', 'offline_access', 'manage'],
    claims: { openid: ['sub'], profile: ['username', 'groups'] },
    pkce: { required: () => true },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        // Pages of our own: the defaults pull a web font from the internet.
        userCodeInputSource: (ctx: any, form: string, _out: unknown, error: any) => {
          ctx.type = 'html';
          ctx.body = page(
            'Connect a device',
            `${error ? `<p role="alert" class="problem">${error.userCode || error.name === 'NoCodeError' ? 'That code is not valid. Try again.' : 'The request could not be processed.'}</p>` : '<p>Enter the code that <code>mm</code> shows.</p>'}
${form.replace(/<input\s+type="text"/, '<label for="user-code">Code</label><input id="user-code" type="text"')}<button type="submit" form="op.deviceInputForm">Continue</button>`,
          );
        },
        userCodeConfirmSource: (ctx: any, form: string, client: any, _device: unknown, userCode: string) => {
          ctx.type = 'html';
          ctx.body = page(
            'Confirm the device',
            `<p><strong>${escapeHtml(String(client.clientId))}</strong> asks to sign in. It should show the code <code>${escapeHtml(userCode)}</code>.</p>
${form}<button type="submit" form="op.deviceConfirmForm">Continue</button> <button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`,
          );
        },
        successSource: (ctx: any) => {
          ctx.type = 'html';
          ctx.body = page('Signed in', '<p>The device is signed in. You can close this page.</p>');
        },
      },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Every client gets a JWT for the API unless it asks for another resource.
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (resource !== audience) throw new Error(`unknown resource ${resource}`);
          return { scope: 'manage', audience, accessTokenTTL: options.accessTokenTtl ?? 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: ALG } } };
        },
      },
    },
    // The console and mm are first-party clients: no consent screen.
    loadExistingGrant: async (ctx: any) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile offline_access');
      grant.addOIDCClaims(['username', 'groups']);
      grant.addResourceScope(audience, 'manage');
      await grant.save();
      return grant;
    },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub, username: sub, groups: [...(accounts[sub] ?? [])] }),
    }),
    extraTokenClaims: (_ctx: unknown, token: any) => {
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      return { username: token.accountId, groups: [...(accounts[token.accountId] ?? [])] };
    },
    ttl: {
      AccessToken: options.accessTokenTtl ?? 3600,
      ClientCredentials: options.accessTokenTtl ?? 3600,
      Session: 8 * 3600,
      Interaction: 600,
      Grant: 8 * 3600,
      DeviceCode: 600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 8 * 3600,
    },
    renderError: (ctx: any, out: Record<string, unknown>) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<p>${escapeHtml(String(out.error))}: ${escapeHtml(String(out.error_description ?? ''))}</p>`);
    },
  } as any));
  // The issuer is plain http on loopback: tell the provider not to insist on TLS cookies.
  provider.proxy = false;
  const callback = provider.callback();

  dispatch = (req, res) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(path);
    if (!match) return void callback(req, res);
    interaction(provider, req, res, accounts).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page('Sign-in error', `<p>${escapeHtml(error instanceof Error ? error.message : String(error))}</p>`));
    });
  };

  return {
    issuer,
    audience,
    state,
    server,
    sign: (tokenOptions) => signIssuerToken(state, tokenOptions),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * oidc-provider, loaded when a provider starts (not for `npm run token`, which only signs).
 * Its warnings that do not apply to a development issuer are left out: the in-memory
 * store is what it wants, and Node.js 20 (which it calls unsupported) is what this
 * repository must run on; every test of the provider runs there.
 */
async function loadProvider(): Promise<typeof Provider> {
  const restore = hideExpectedWarnings();
  try {
    return (await import('oidc-provider')).default;
  } finally {
    restore();
  }
}

const EXPECTED_WARNINGS = /^oidc-provider WARNING: (Unsupported runtime|a quick start development-only in-memory adapter)/;

/** console.warn without those two warnings, until the returned function is called. */
function hideExpectedWarnings(): () => void {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!(typeof args[0] === 'string' && EXPECTED_WARNINGS.test(args[0].replace(/\x1b\[[0-9;]*m/g, '')))) warn(...args);
  };
  return () => {
    console.warn = warn;
  };
}

function quietly<T>(make: () => T): T {
  const restore = hideExpectedWarnings();
  try {
    return make();
  } finally {
    restore();
  }
}

/** The sign-in form (GET) and its submission (POST): a user name and its password. */
async function interaction(provider: Provider, req: IncomingMessage, res: ServerResponse, accounts: Readonly<Record<string, readonly string[]>>) {
  const details = await provider.interactionDetails(req, res);
  const client = String(details.params.client_id ?? '');
  if (req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const username = (form.get('username') ?? '').trim();
    const password = form.get('password') ?? '';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(username) || password !== username) {
      res.writeHead(200, htmlHeaders());
      res.end(loginPage(details.uid, client, accounts, 'Wrong user name or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(200, htmlHeaders());
  res.end(loginPage(details.uid, client, accounts));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 10_000) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function htmlHeaders() {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No form-action: Chrome applies it to the redirect back to the client after the form posts.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
  };
}

function loginPage(uid: string, client: string, accounts: Readonly<Record<string, readonly string[]>>, problem?: string): string {
  const rows = Object.entries(accounts)
    .map(([name, groups]) => `<li><code>${escapeHtml(name)}</code> — ${groups.length ? escapeHtml(groups.join(', ')) : 'no groups'}</li>`)
    .join('');
  return page(
    'Sign in',
    `<p>to <strong>${escapeHtml(client)}</strong> (local development issuer)</p>
${problem ? `<p role="alert" class="problem">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="username">User name</label>
  <input id="username" name="username" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
<p class="hint">Development accounts (the password is the user name):</p>
<ul>${rows}</ul>`,
  );
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — middle-management (dev)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
label{display:block;margin-top:.75rem;font-weight:600}input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #8a939e;border-radius:4px}
button{margin-top:1rem;padding:.5rem 1.25rem;font:inherit;background:#1f5fbf;color:#fff;border:0;border-radius:4px}
button:focus,input:focus{outline:3px solid #f0b400;outline-offset:1px}.problem{color:#a4000f;font-weight:600}.hint,ul{font-size:.9rem;color:#444}</style>
</head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * `node --import tsx local/oidc-issuer.ts`: runs the provider alone on ISSUER_PORT
 * (default 3005) for an API on PORT (default 3000), and prints the settings that
 * make the API and its console trust it. Until `npm start` starts it itself.
 */
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const apiPort = process.env.PORT || '3000';
  const running = await startOidcIssuer({
    port: Number(process.env.ISSUER_PORT || 3005),
    consoleRedirectUris: [`http://localhost:${apiPort}/__manage__/console`, `http://127.0.0.1:${apiPort}/__manage__/console`],
  });
  process.stdout.write(
    [
      `development OpenID provider at ${running.issuer} (accounts: ${Object.keys(DEV_ACCOUNTS).join(', ')}; password = user name)`,
      `MANAGE_JWT_ISSUER=${running.issuer}`,
      `MANAGE_JWT_AUDIENCE=${running.audience}`,
      `MANAGE_CONSOLE_CLIENT_ID=${CONSOLE_CLIENT_ID}`,
      `MANAGE_CONSOLE_RESOURCE=${running.audience}`,
      `console: http://localhost:${apiPort}/__manage__/console`,
      '',
    ].join('\n'),
  );
  const stop = () => void running.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
