/**
 * `mm` against a certified OpenID provider (oidc-provider, on loopback) and the
 * real `manage` handler trusting it: client credentials and the device grant
 * (its pages driven from the test as a browser would), RFC 8707 resource
 * indicators (without one, oidc-provider issues opaque access tokens), refresh,
 * a confidential device client, and what `mm` says when a token cannot work or
 * the server refuses it — without starting a new device sign-in.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type TestStack } from '../support/stack.js';
import { serveHandler, type ServedHandler } from '../support/http-server.js';
import { decodeJwt, defaultClients, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { buildCli, makeHome, mm as runMm, writeConfig, type MmOptions, type MmResult } from './helpers.js';

const T = { timeout: 90_000 };
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const CONFIDENTIAL = { clientId: 'mm-cli-confidential', clientSecret: 'confidential-device-client-secret-0123456789' };
const SCOPE = 'openid offline_access profile manage:run';

describe('mm against oidc-provider', { timeout: 400_000 }, () => {
  let op: TestOidcProvider;
  let stack: TestStack;
  let served: ServedHandler;
  /** The same handler, expecting another audience: it refuses every token of op. */
  let strict: ServedHandler;
  const home = makeHome();
  const outputs: MmResult[] = [];
  const secrets = new Set<string>([CONFIDENTIAL.clientSecret]);
  /** What oidc-provider saw in each successful grant: grant type, client, resource. */
  const grants: { grantType: string; clientId: string; resource: unknown }[] = [];

  const mm = async (args: string[], options: MmOptions = {}) => {
    const result = await runMm(args, { timeoutMs: 40_000, ...options, env: { HOME: home.home, MM_CONFIG_DIR: home.configDir, ...options.env } });
    outputs.push(result);
    return result;
  };
  /** `mm args` whose device code the test approves in the provider's pages as `account` (or denies). */
  const mmWithDevice = (args: string[], account: string, options: MmOptions & { deny?: boolean } = {}) => {
    let approving: Promise<void> | undefined;
    return mm(args, {
      ...options,
      onStderr: (soFar) => {
        const url = /\(or open (\S+)\)/.exec(soFar)?.[1];
        if (url && !approving) {
          approving = op.approveDevice(url, account, { deny: options.deny ?? false }).catch((error) => {
            process.stderr.write(`approving the device code failed: ${error}\n`);
          });
        }
      },
    });
  };
  const cacheFile = (profile: string) => join(home.configDir, 'tokens', `${profile}.json`);
  const readCacheFile = (profile: string) => {
    const entry = JSON.parse(readFileSync(cacheFile(profile), 'utf8'));
    secrets.add(entry.accessToken);
    if (entry.refreshToken) secrets.add(entry.refreshToken);
    return entry;
  };

  before(async () => {
    buildCli();
    op = await startOidcProvider({
      accounts: { alice: { groups: ['ops'] } },
      clients: [...defaultClients(), { ...CONFIDENTIAL, grantTypes: [DEVICE_GRANT, 'refresh_token'] }],
    });
    op.provider.on('grant.success', (ctx: any) => {
      grants.push({ grantType: ctx.oidc.params.grant_type, clientId: ctx.oidc.client?.clientId, resource: ctx.oidc.params.resource });
    });
    stack = await startStack({ env: { MANAGE_JWT_ISSUER: op.issuer, MANAGE_JWT_AUDIENCE: op.resource, MANAGE_JWT_JWKS_URI: op.jwksUri } });
    served = await serveHandler(stack.handler);
    strict = await serveHandler(stack.withEnv({ MANAGE_JWT_AUDIENCE: 'https://another.test/api' }).handler);
    const device = { method: 'device', issuer: op.issuer, clientId: op.clients.cli.clientId, scope: SCOPE };
    writeConfig(home.configDir, {
      profiles: {
        'ci-opaque': { url: served.url, auth: { method: 'client_credentials', tokenUrl: op.tokenEndpoint, clientId: op.clients.ci.clientId, scope: 'manage:run' } },
        sso: { url: served.url, auth: { ...device, resource: op.resource } },
        'sso-strict': { url: strict.url, auth: { ...device, resource: op.resource } },
        'sso-opaque': { url: served.url, auth: device },
      },
    });
  });

  after(async () => {
    await Promise.all([served?.close(), strict?.close()]);
    await stack?.close();
    await op?.close();
    home.cleanup();
  });

  test('client credentials with --resource: a JWT for the API; mm login greets "client <id>"; the run is made as the client', T, async () => {
    const configure = await mm([
      'configure', '--profile', 'ci', '--url', served.url, '--auth', 'client_credentials', '--token-url', op.tokenEndpoint,
      '--client-id', op.clients.ci.clientId, '--scope', 'manage:run', '--resource', op.resource,
    ]);
    assert.equal(configure.code, 0, configure.stderr);
    assert.equal(JSON.parse(readFileSync(join(home.configDir, 'config.json'), 'utf8')).profiles.ci.auth.resource, op.resource);
    const env = { MM_CLIENT_SECRET: op.clients.ci.clientSecret };
    secrets.add(op.clients.ci.clientSecret);
    const login = await mm(['--profile', 'ci', 'login'], { env });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Signed in as client mm-ci \(profile ci\)/);
    const token = readCacheFile('ci').accessToken;
    assert.equal(decodeJwt(token).header.typ, 'at+jwt');
    assert.equal(decodeJwt(token).payload.aud, op.resource);
    assert.deepEqual(grants.at(-1), { grantType: 'client_credentials', clientId: 'mm-ci', resource: op.resource });
    const run = await mm(['--profile', 'ci', 'run', 'echo', 'message=ci', '--json']);
    assert.equal(run.code, 0, run.stdout);
    const list = await mm(['--profile', 'ci', 'executions', '--json']);
    assert.equal(JSON.parse(list.stdout).executions[0].actor.subject, 'mm-ci');
  });

  test('client credentials without a resource: the opaque token is recognised, not cached, not sent; the message names --resource', T, async () => {
    const r = await mm(['--profile', 'ci-opaque', 'run', 'noop'], { env: { MM_CLIENT_SECRET: op.clients.ci.clientSecret } });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /The issuer returned an opaque token \(token_type Bearer, \d+ characters, not a JWT\), which middle-management cannot accept/);
    assert.match(r.stderr, /--resource <the API's resource URI>/);
    assert.match(r.stderr, /--audience/);
    assert.doesNotMatch(r.stderr, /Sign in again/);
    assert.ok(!existsSync(cacheFile('ci-opaque')), 'an unusable token is not cached');
    const json = await mm(['--profile', 'ci-opaque', 'login', '--json'], { env: { MM_CLIENT_SECRET: op.clients.ci.clientSecret } });
    assert.equal(json.code, 3);
    assert.equal(JSON.parse(json.stdout).error.code, 'UnusableToken');
    // The same without a profile (CI): MM_RESOURCE fixes it.
    const ciEnv = { MM_CONFIG_DIR: join(home.home, 'no-config'), MM_URL: served.url, MM_TOKEN_URL: op.tokenEndpoint, MM_CLIENT_ID: 'mm-ci', MM_CLIENT_SECRET: op.clients.ci.clientSecret, MM_SCOPE: 'manage:run' };
    assert.equal((await mm(['run', 'noop'], { env: ciEnv })).code, 3);
    const fixed = await mm(['run', 'noop'], { env: { ...ciEnv, MM_RESOURCE: op.resource } });
    assert.equal(fixed.code, 0, fixed.stderr);
  });

  test('device grant with --resource: the user approves in the browser pages; greeted by name; refresh sends the resource again', T, async () => {
    const devicesBefore = op.hits('/device/auth');
    const login = await mmWithDevice(['--profile', 'sso', 'login'], 'alice');
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stderr, /To sign in, open http:\/\/127\.0\.0\.1:\d+\/device and enter the code/);
    assert.match(login.stdout, /Signed in as alice \(profile sso\)/, 'the user, not the client id');
    assert.equal(op.hits('/device/auth'), devicesBefore + 1);
    assert.deepEqual(grants.at(-1), { grantType: DEVICE_GRANT, clientId: 'mm-cli', resource: op.resource });
    const first = readCacheFile('sso');
    assert.equal(decodeJwt(first.accessToken).payload.aud, op.resource);
    assert.ok(first.refreshToken, 'offline_access gave a refresh token');
    assert.equal((await mm(['--profile', 'sso', 'run', 'noop'])).code, 0);

    writeFileSync(cacheFile('sso'), JSON.stringify({ ...first, expiresAt: Date.now() - 1000 }));
    const run = await mm(['--profile', 'sso', 'run', 'echo', 'message=refreshed', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(grants.at(-1), { grantType: 'refresh_token', clientId: 'mm-cli', resource: op.resource });
    assert.equal(op.hits('/device/auth'), devicesBefore + 1, 'no new device sign-in');
    const refreshed = readCacheFile('sso');
    assert.notEqual(refreshed.accessToken, first.accessToken);
    assert.equal(decodeJwt(refreshed.accessToken).payload.aud, op.resource);
  });

  test('device grant without a resource: the opaque access token is recognised after sign-in, with the settings to change', T, async () => {
    const r = await mmWithDevice(['--profile', 'sso-opaque', 'login'], 'alice');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /The issuer returned an opaque token \(token_type Bearer, \d+ characters, not a JWT\)/);
    assert.match(r.stderr, /mm configure --profile sso-opaque --resource/);
    assert.match(r.stderr, /--token-use id/);
    assert.ok(!existsSync(cacheFile('sso-opaque')));
  });

  test('a cached token the server refuses: one refresh, then exit 3 with what was sent and what to change; no new device sign-in; the refresh token is kept', T, async () => {
    // The same sign-in settings as sso, so its cache applies; this stage expects another audience.
    writeFileSync(cacheFile('sso-strict'), readFileSync(cacheFile('sso')));
    const devices = op.hits('/device/auth');
    const tokens = op.hits('/token');
    const r = await mm(['--profile', 'sso-strict', 'run', 'noop']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /A valid bearer token is required\./);
    assert.match(r.stderr, new RegExp(`refused the token of profile sso-strict: a JWT \\(typ at\\+jwt, alg RS256\\), from ${op.issuer.replace(/[.]/g, '\\.')}, for audience ${op.resource.replace(/[.]/g, '\\.')}`));
    assert.match(r.stderr, /A token renewed with the refresh token was refused too\. The token is new, so the server does not trust this issuer, audience or token type/);
    assert.match(r.stderr, /--resource/);
    assert.doesNotMatch(r.stderr, /To sign in, open/);
    assert.equal(op.hits('/device/auth'), devices, 'no device authorization request');
    assert.equal(op.hits('/token'), tokens + 1, 'one refresh');
    const cached = readCacheFile('sso-strict');
    assert.ok(cached.refreshToken, 'the refresh token is kept');

    // Without a refresh token: no renewal at all, the same explanation, still no device sign-in.
    writeFileSync(cacheFile('sso-strict'), JSON.stringify({ ...cached, refreshToken: undefined }));
    const again = await mm(['--profile', 'sso-strict', 'run', 'noop']);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /does not start a new sign-in/);
    assert.equal(op.hits('/device/auth'), devices);
    assert.equal(op.hits('/token'), tokens + 1);
    const json = await mm(['--profile', 'sso-strict', 'run', 'noop', '--json']);
    assert.equal(json.code, 3);
    assert.equal(JSON.parse(json.stdout).error.code, 'Unauthorized', '--json prints the server body as is');
    assert.equal(json.stderr, '');
  });

  test('a token given in MM_TOKEN that the server refuses: described (opaque), never replaced', T, async () => {
    const r = await mm(['--profile', 'sso', 'run', 'noop'], { env: { MM_TOKEN: 'not-a-jwt-but-an-opaque-reference-token-value' } });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /The token from MM_TOKEN is an opaque token \(\d+ characters, not a JWT\)/);
    secrets.add('not-a-jwt-but-an-opaque-reference-token-value');
  });

  test('a confidential device client: the client secret (stored 0600, or MM_CLIENT_SECRET) authenticates the device and token requests', T, async () => {
    const configure = await mm(
      ['configure', '--profile', 'sso-conf', '--url', served.url, '--auth', 'device', '--issuer', op.issuer, '--client-id', CONFIDENTIAL.clientId, '--scope', SCOPE, '--resource', op.resource, '--client-secret', '-'],
      { input: `${CONFIDENTIAL.clientSecret}\n` },
    );
    assert.equal(configure.code, 0, configure.stderr);
    assert.ok(!readFileSync(join(home.configDir, 'config.json'), 'utf8').includes(CONFIDENTIAL.clientSecret));
    const login = await mmWithDevice(['--profile', 'sso-conf', 'login'], 'alice');
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Signed in as alice/);
    assert.deepEqual(grants.at(-1), { grantType: DEVICE_GRANT, clientId: CONFIDENTIAL.clientId, resource: op.resource });
    assert.equal((await mm(['--profile', 'sso-conf', 'run', 'noop'])).code, 0);
    // A wrong secret in the environment wins over the stored one, and the issuer says invalid_client.
    const wrong = await mm(['--profile', 'sso-conf', 'login'], { env: { MM_CLIENT_SECRET: 'wrong-secret-for-this-client' } });
    secrets.add('wrong-secret-for-this-client');
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /invalid_client/);
  });

  test('no output holds a token, a refresh token or a client secret', () => {
    assert.ok(outputs.length >= 15);
    for (const output of outputs) {
      for (const secret of secrets) {
        assert.ok(!output.stdout.includes(secret) && !output.stderr.includes(secret), `a secret leaked:\n${output.stdout}\n${output.stderr}`);
      }
    }
  });
});
