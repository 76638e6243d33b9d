/**
 * Sign-in and the token cache, end to end: the built CLI against the real
 * handler, with a local OAuth2 token endpoint, a local OIDC issuer offering
 * the device grant, and a local stand-in of the Cognito IdP JSON API, all on
 * 127.0.0.1 and all minting tokens of the test issuer the handler trusts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, SignJWT } from 'jose';
import { startStack, type TestStack } from '../support/stack.js';
import { serveHandler, type ServedHandler } from '../support/http-server.js';
import { buildCli, fakeServer, makeHome, mm as runMm, sendJson, writeConfig, type FakeServer, type MmOptions, type MmResult } from './helpers.js';

const T = { timeout: 30_000 };
const CLIENT_SECRET = 'top-secret-client-secret-value';
const PASSWORD = 'correct horse battery staple';

describe('mm sign-in and token cache', { timeout: 180_000 }, () => {
  let stack: TestStack;
  let served: ServedHandler;
  let oauth: FakeServer;
  let cognito: FakeServer;
  const home = makeHome();
  const outputs: MmResult[] = [];
  /** Every token, refresh token and secret handed out: none may be printed. */
  const secrets = new Set<string>([CLIENT_SECRET, PASSWORD]);
  let issued = 0;

  const mint = async (sub: string, expiresIn = 3600) => {
    const token = await stack.issuer.sign({ sub, username: sub, n: ++issued }, { expiresIn });
    secrets.add(token);
    return token;
  };
  const refreshToken = () => {
    const value = `refresh-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    secrets.add(value);
    return value;
  };

  const mm = async (args: string[], options: MmOptions = {}) => {
    const result = await runMm(args, {
      ...options,
      env: { HOME: home.home, MM_CONFIG_DIR: home.configDir, ...options.env },
    });
    outputs.push(result);
    return result;
  };
  const cacheFile = (profile: string) => join(home.configDir, 'tokens', `${profile}.json`);
  const readCacheFile = (profile: string) => JSON.parse(readFileSync(cacheFile(profile), 'utf8'));
  const expireCache = (profile: string, inMs = -1000) => {
    const entry = readCacheFile(profile);
    writeFileSync(cacheFile(profile), JSON.stringify({ ...entry, expiresAt: Date.now() + inMs }));
  };
  const grants = (grant: string) => oauth.requests.filter((r) => r.path === '/oauth2/token' && new URLSearchParams(r.body).get('grant_type') === grant);

  let devicePolls = 0;

  before(async () => {
    buildCli();
    stack = await startStack();
    served = await serveHandler(stack.handler);
    oauth = await fakeServer(async (req, res) => {
      const form = new URLSearchParams(req.body);
      if (req.method === 'GET' && req.path === '/.well-known/openid-configuration') {
        return sendJson(res, 200, { issuer: oauth.url, token_endpoint: `${oauth.url}/oauth2/token`, device_authorization_endpoint: `${oauth.url}/device` });
      }
      if (req.method === 'POST' && req.path === '/device') {
        devicePolls = 0;
        return sendJson(res, 200, {
          device_code: 'device-code-0123456789',
          user_code: 'WXYZ-1234',
          verification_uri: `${oauth.url}/activate`,
          verification_uri_complete: `${oauth.url}/activate?code=WXYZ-1234`,
          expires_in: 60,
          interval: 0.05,
        });
      }
      if (req.method !== 'POST' || req.path !== '/oauth2/token') return sendJson(res, 404, { error: 'not_found' });
      switch (form.get('grant_type')) {
        case 'client_credentials': {
          const basic = Buffer.from(`ci-client:${CLIENT_SECRET}`).toString('base64');
          if (req.headers.authorization !== `Basic ${basic}`) return sendJson(res, 401, { error: 'invalid_client', error_description: 'bad client credentials' });
          return sendJson(res, 200, { access_token: await mint('ci-bot'), token_type: 'Bearer', expires_in: 3600 });
        }
        case 'refresh_token':
          if (!secrets.has(form.get('refresh_token') ?? '')) return sendJson(res, 400, { error: 'invalid_grant' });
          return sendJson(res, 200, { access_token: await mint('dora'), token_type: 'Bearer', expires_in: 3600, refresh_token: refreshToken() });
        case 'urn:ietf:params:oauth:grant-type:device_code':
          if (form.get('device_code') !== 'device-code-0123456789' || form.get('client_id') !== 'cli') return sendJson(res, 400, { error: 'invalid_grant' });
          if (++devicePolls < 3) return sendJson(res, 400, { error: 'authorization_pending' });
          return sendJson(res, 200, { access_token: await mint('dora'), token_type: 'Bearer', expires_in: 3600, refresh_token: refreshToken() });
        default:
          return sendJson(res, 400, { error: 'unsupported_grant_type' });
      }
    });
    cognito = await fakeServer(async (req, res) => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = JSON.parse(req.body || '{}');
      const fail = (type: string, message: string) => sendJson(res, 400, { __type: type, message });
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1' || body.ClientId !== 'pool-client') return fail('InvalidParameterException', 'bad request');
      if (target === 'AWSCognitoIdentityProviderService.InitiateAuth' && body.AuthFlow === 'USER_PASSWORD_AUTH') {
        if (body.AuthParameters?.USERNAME !== 'carol' || body.AuthParameters?.PASSWORD !== PASSWORD) return fail('NotAuthorizedException', 'Incorrect username or password.');
        return sendJson(res, 200, { ChallengeName: 'SOFTWARE_TOKEN_MFA', Session: 'session-1', ChallengeParameters: { USER_ID_FOR_SRP: 'carol' } });
      }
      if (target === 'AWSCognitoIdentityProviderService.RespondToAuthChallenge') {
        if (body.ChallengeName !== 'SOFTWARE_TOKEN_MFA' || body.Session !== 'session-1' || body.ChallengeResponses?.USERNAME !== 'carol') return fail('InvalidParameterException', 'bad challenge');
        if (body.ChallengeResponses?.SOFTWARE_TOKEN_MFA_CODE !== '123456') return fail('CodeMismatchException', 'Invalid code received for user');
        return sendJson(res, 200, {
          AuthenticationResult: { AccessToken: await mint('carol'), IdToken: await mint('carol-id'), RefreshToken: refreshToken(), ExpiresIn: 3600, TokenType: 'Bearer' },
        });
      }
      if (target === 'AWSCognitoIdentityProviderService.InitiateAuth' && body.AuthFlow === 'REFRESH_TOKEN_AUTH') {
        if (!secrets.has(body.AuthParameters?.REFRESH_TOKEN)) return fail('NotAuthorizedException', 'Invalid Refresh Token');
        return sendJson(res, 200, { AuthenticationResult: { AccessToken: await mint('carol'), ExpiresIn: 3600, TokenType: 'Bearer' } });
      }
      return fail('InvalidParameterException', `unexpected ${target}`);
    });
    writeConfig(home.configDir, {
      defaultProfile: 'ci',
      profiles: {
        ci: { url: served.url, auth: { method: 'client_credentials', tokenUrl: `${oauth.url}/oauth2/token`, clientId: 'ci-client' } },
        sso: { url: served.url, auth: { method: 'device', issuer: oauth.url, clientId: 'cli' } },
        pool: { url: served.url, auth: { method: 'cognito', region: 'eu-west-1', clientId: 'pool-client', username: 'carol', endpoint: cognito.url } },
        local: { url: served.url, auth: { method: 'command', command: 'printf %s "$TEST_TOKEN"' } },
        bare: { url: served.url },
      },
    });
  });

  after(async () => {
    await Promise.all([served?.close(), oauth?.close(), cognito?.close()]);
    await stack?.close();
    home.cleanup();
  });

  test('client credentials: signs in at the token endpoint, runs, and caches the token with mode 0600', T, async () => {
    const r = await mm(['run', 'echo', 'message=ci'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(grants('client_credentials').length, 1);
    assert.equal(statSync(cacheFile('ci')).mode & 0o777, 0o600);
    assert.equal(statSync(join(home.configDir, 'tokens')).mode & 0o777, 0o700);
    const cached = readCacheFile('ci');
    assert.equal(cached.method, 'client_credentials');
    assert.ok(cached.expiresAt > Date.now() + 3000_000);
    // The run was made as the client.
    const list = await mm(['executions', '--json'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } });
    assert.equal(JSON.parse(list.stdout).executions[0].actor.subject, 'ci-bot');
  });

  test('a fresh cached token is used without signing in; an expired or nearly expired one is replaced', T, async () => {
    const before = grants('client_credentials').length;
    assert.equal((await mm(['run', 'noop'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } })).code, 0);
    assert.equal((await mm(['run', 'noop'])).code, 0, 'no secret needed while the cache is fresh');
    assert.equal(grants('client_credentials').length, before);

    expireCache('ci');
    assert.equal((await mm(['run', 'noop'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } })).code, 0);
    assert.equal(grants('client_credentials').length, before + 1);
    assert.ok(readCacheFile('ci').expiresAt > Date.now());

    expireCache('ci', 30_000); // inside the one-minute margin
    assert.equal((await mm(['run', 'noop'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } })).code, 0);
    assert.equal(grants('client_credentials').length, before + 2);

    expireCache('ci');
    const noSecret = await mm(['run', 'noop']);
    assert.equal(noSecret.code, 3);
    assert.match(noSecret.stderr, /MM_CLIENT_SECRET/);
  });

  test('a cached token the server refuses is dropped and replaced by one new sign-in', T, async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ sub: 'ci-bot' })
      .setProtectedHeader({ alg: 'RS256', kid: 'nope' })
      .setIssuer(stack.issuer.issuer)
      .setAudience(stack.issuer.audience)
      .setExpirationTime('1h')
      .sign(privateKey);
    secrets.add(forged);
    writeFileSync(cacheFile('ci'), JSON.stringify({ ...readCacheFile('ci'), accessToken: forged }));
    const before = grants('client_credentials').length;
    const r = await mm(['run', 'noop'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(grants('client_credentials').length, before + 1);
    assert.notEqual(readCacheFile('ci').accessToken, forged);
  });

  test('wrong client secret exits 3 with the endpoint\'s reason; --client-id and env-only sign-in work', T, async () => {
    const wrong = await mm(['login'], { env: { MM_CLIENT_SECRET: 'not-the-right-secret' } });
    secrets.add('not-the-right-secret');
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /invalid_client: bad client credentials/);
    const otherId = await mm(['login', '--client-id', 'someone-else'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } });
    assert.equal(otherId.code, 3, '--client-id is used');
    // No profile at all: MM_URL + MM_TOKEN_URL + MM_CLIENT_ID + MM_CLIENT_SECRET (CI).
    const envOnly = await mm(['run', 'echo', 'message=ci-env', '--json'], {
      env: {
        MM_CONFIG_DIR: join(home.home, 'empty-config'),
        MM_URL: served.url,
        MM_TOKEN_URL: `${oauth.url}/oauth2/token`,
        MM_CLIENT_ID: 'ci-client',
        MM_CLIENT_SECRET: CLIENT_SECRET,
      },
    });
    assert.equal(envOnly.code, 0, envOnly.stdout);
    assert.ok(!existsSync(join(home.home, 'empty-config', 'tokens')), 'nothing cached without a profile');
  });

  test('Cognito: USER_PASSWORD_AUTH with a SOFTWARE_TOKEN_MFA challenge, then refresh with the refresh token', T, async () => {
    const env = { MM_PROFILE: 'pool', MM_PASSWORD: PASSWORD, MM_MFA_CODE: '123456' };
    const login = await mm(['login'], { env });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Signed in as carol \(profile pool\); token valid until/);
    const targets = cognito.requests.map((r) => r.headers['x-amz-target']);
    assert.deepEqual(targets, ['AWSCognitoIdentityProviderService.InitiateAuth', 'AWSCognitoIdentityProviderService.RespondToAuthChallenge']);
    assert.equal(statSync(cacheFile('pool')).mode & 0o777, 0o600);
    assert.equal((await mm(['run', 'noop'], { env: { MM_PROFILE: 'pool' } })).code, 0);

    expireCache('pool');
    const refreshed = await mm(['run', 'noop'], { env: { MM_PROFILE: 'pool' } });
    assert.equal(refreshed.code, 0, refreshed.stderr);
    assert.equal(JSON.parse(cognito.requests.at(-1)!.body).AuthFlow, 'REFRESH_TOKEN_AUTH');
    assert.ok(readCacheFile('pool').refreshToken, 'the refresh token is kept');

    const badCode = await mm(['login'], { env: { ...env, MM_MFA_CODE: '000000' } });
    assert.equal(badCode.code, 3);
    assert.match(badCode.stderr, /CodeMismatchException/);
    const badPassword = await mm(['login'], { env: { ...env, MM_PASSWORD: 'wrong password!' } });
    assert.equal(badPassword.code, 3);
    assert.match(badPassword.stderr, /Incorrect username or password/);
    const noTerminal = await mm(['login'], { env: { MM_PROFILE: 'pool' } });
    assert.equal(noTerminal.code, 3);
    assert.match(noTerminal.stderr, /needs a terminal/);
  });

  test('OIDC device grant: discovers the endpoints, shows the code, polls until approved, refreshes later', T, async () => {
    const login = await mm(['--profile', 'sso', 'login']);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stderr, /open http:\/\/127\.0\.0\.1:\d+\/activate and enter the code WXYZ-1234/);
    assert.equal(devicePolls, 3);
    assert.match(login.stdout, /Signed in as dora/);
    expireCache('sso');
    const before = grants('refresh_token').length;
    const r = await mm(['--profile', 'sso', 'run', 'noop']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(grants('refresh_token').length, before + 1);
  });

  test('a command that prints a token; a profile without a method asks for --token', T, async () => {
    const token = await mint('local-dev');
    const r = await mm(['--profile', 'local', 'run', 'noop'], { env: { TEST_TOKEN: token } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readCacheFile('local').accessToken, token);
    const bare = await mm(['--profile', 'bare', 'run', 'noop']);
    assert.equal(bare.code, 3);
    assert.match(bare.stderr, /no sign-in method/);
  });

  test('a changed sign-in setting invalidates the cache; mm logout removes it; mm profiles shows it', T, async () => {
    const profiles = await mm(['profiles']);
    assert.equal(profiles.code, 0);
    assert.match(profiles.stdout, /\*\s+ci\s+http:\/\/127\.0\.0\.1:\d+\s+client_credentials\s+human\s+no\s+until /);
    assert.match(profiles.stdout, /bare\s+http\S+\s+token\s+human\s+no\s+none/);
    const logout = await mm(['--profile', 'sso', 'logout']);
    assert.equal(logout.code, 0);
    assert.ok(!existsSync(cacheFile('sso')));
    // Same profile name, other client id: the cached token is not used.
    const before = grants('client_credentials').length;
    const configure = await mm(['configure', '--profile', 'ci', '--url', served.url, '--auth', 'client_credentials', '--token-url', `${oauth.url}/oauth2/token`, '--client-id', 'ci-client', '--scope', 'ops']);
    assert.equal(configure.code, 0, configure.stderr);
    assert.equal((await mm(['run', 'noop'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } })).code, 0);
    assert.equal(grants('client_credentials').length, before + 1);
    assert.equal(new URLSearchParams(grants('client_credentials').at(-1)!.body).get('scope'), 'ops');
  });

  test('mm configure without a terminal writes a profile from flags (mode 0600) and needs --url', T, async () => {
    const r = await mm(['configure', '--profile', 'prod', '--url', 'https://api.example.com/', '--auth', 'cognito', '--user-pool-id', 'eu-west-1_AbC', '--client-id', 'abc', '--confirm']);
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(home.configDir, 'config.json'), 'utf8'));
    assert.deepEqual(config.profiles.prod, { url: 'https://api.example.com', auth: { method: 'cognito', region: 'eu-west-1', clientId: 'abc' }, confirm: true });
    assert.equal(config.defaultProfile, 'ci', 'the default stays');
    assert.equal(statSync(join(home.configDir, 'config.json')).mode & 0o777, 0o600);
    const noUrl = await mm(['configure', '--profile', 'x', '--auth', 'token']);
    assert.equal(noUrl.code, 2);
    const badMethod = await mm(['configure', '--profile', 'x', '--url', 'https://a.example', '--auth', 'magic']);
    assert.equal(badMethod.code, 2);
  });

  test('no output holds a token, a refresh token, the client secret or the password; mm token prints the cached one', T, async () => {
    const token = await mm(['token'], { env: { MM_CLIENT_SECRET: CLIENT_SECRET } });
    assert.equal(token.code, 0);
    assert.equal(token.stdout.trim(), readCacheFile('ci').accessToken);
    assert.ok(outputs.length >= 25);
    for (const output of outputs.slice(0, -1)) {
      for (const secret of secrets) {
        assert.ok(!output.stdout.includes(secret) && !output.stderr.includes(secret), `a secret leaked:\n${output.stdout}\n${output.stderr}`);
      }
    }
  });
});
