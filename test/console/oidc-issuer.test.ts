/**
 * The development OpenID provider (local/oidc-issuer.ts) as the API sees it:
 * its tokens pass the same verifier production uses, found through the same
 * settings (MANAGE_JWT_ISSUER / MANAGE_JWT_AUDIENCE, JWKS at the default place).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { loadConfig } from '../../src/config.js';
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/verifier.js';
import { CI_CLIENT_ID, CI_CLIENT_SECRET, CLI_CLIENT_ID, createOidcIssuerState, signIssuerToken, startOidcIssuer, type RunningOidcIssuer } from '../../local/oidc-issuer.js';

let issuer: RunningOidcIssuer;
let verifier: TokenVerifier;
let discovery: Record<string, any>;
const form = (body: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });

before(async () => {
  issuer = await startOidcIssuer();
  verifier = createTokenVerifier(
    loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_JWT_ISSUER: issuer.issuer, MANAGE_JWT_AUDIENCE: issuer.audience, MANAGE_AUDIT_TABLE: 't' }, ['echo']),
  );
  discovery = await (await fetch(`${issuer.issuer}/.well-known/openid-configuration`)).json();
});
after(() => issuer.close());

describe('the development OpenID provider', () => {
  it('publishes code + PKCE (S256), the device grant and client credentials, with its JWKS where the API looks', () => {
    assert.equal(discovery.issuer, issuer.issuer);
    assert.equal(discovery.jwks_uri, `${issuer.issuer}/.well-known/jwks.json`);
    assert.ok(discovery.grant_types_supported.includes('authorization_code'));
    assert.ok(discovery.grant_types_supported.includes('client_credentials'));
    assert.ok(discovery.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:device_code'));
    assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);
    assert.match(discovery.device_authorization_endpoint, /^http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('client credentials: a JWT access token for the API audience that the API accepts', async () => {
    const response = await fetch(discovery.token_endpoint, {
      ...form({ grant_type: 'client_credentials', scope: 'manage' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CI_CLIENT_ID}:${CI_CLIENT_SECRET}`).toString('base64')}` },
    });
    assert.equal(response.status, 200);
    const { access_token: token } = await response.json();
    assert.equal(decodeJwt(token).aud, issuer.audience);
    const actor = await verifier.verify(token);
    assert.equal(actor.subject, CI_CLIENT_ID);
    assert.deepEqual(actor.scopes, ['manage']);
  });

  it('device grant: hands out a user code and makes the client wait for it', async () => {
    const start = await (await fetch(discovery.device_authorization_endpoint, form({ client_id: CLI_CLIENT_ID, scope: 'openid' }))).json();
    assert.match(start.user_code, /^[A-Z]{4}-[A-Z]{4}$/);
    assert.ok(start.verification_uri_complete.startsWith(`${issuer.issuer}/device`));
    const poll = await fetch(discovery.token_endpoint, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: start.device_code, client_id: CLI_CLIENT_ID }));
    assert.equal((await poll.json()).error, 'authorization_pending');
  });

  it('signs a token for any sub and groups with its own key, without a sign-in (npm run token)', async () => {
    const actor = await verifier.verify(await issuer.sign({ sub: 'carol', groups: ['ops', 'auditors'] }));
    assert.equal(actor.subject, 'carol');
    assert.equal(actor.username, 'carol');
    assert.deepEqual(actor.groups, ['ops', 'auditors']);
    // A development account's groups by default.
    assert.deepEqual((await verifier.verify(await issuer.sign({ sub: 'bob' }))).groups, ['ops', 'approvers']);
  });

  it('a token signed with another key is refused', async () => {
    const stranger = await createOidcIssuerState(issuer.issuer);
    await assert.rejects(verifier.verify(await signIssuerToken({ ...stranger, kid: issuer.state.kid })), { name: 'Unauthorized' });
  });

  it('the sign-in form refuses a wrong password', async () => {
    // Start an authorization request as a browser would, then post the form with a wrong password.
    const authorize = new URL(discovery.authorization_endpoint);
    authorize.search = new URLSearchParams({
      client_id: 'mm-console',
      response_type: 'code',
      redirect_uri: 'http://localhost:3000/__manage__/console',
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    const first = await fetch(authorize, { redirect: 'manual' });
    const cookies = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const interaction = new URL(first.headers.get('location')!, issuer.issuer);
    const page = await (await fetch(interaction, { headers: { cookie: cookies } })).text();
    assert.match(page, /<label for="username">User name<\/label>/);
    const posted = await fetch(`${interaction}/login`, { ...form({ username: 'alice', password: 'wrong' }), headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies }, redirect: 'manual' });
    assert.equal(posted.status, 200);
    assert.match(await posted.text(), /Wrong user name or password/);
  });
});

describe('the local stack’s issuer (local/dev-issuer.ts) on the provider', () => {
  it('keeps its key in DEV_ISSUER_FILE: a token of `dev token` passes before and after a restart', async () => {
    const { mkdtemp, rm, writeFile, readFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { freePort } = await import('../../local/processes.js');
    const { loadDevIssuer, signDevToken, startDevIssuer, DEV_AUDIENCE } = await import('../../local/dev-issuer.js');
    const dir = await mkdtemp(join(tmpdir(), 'mm-dev-issuer-'));
    try {
      const env = { DEV_ISSUER_FILE: join(dir, 'dev-issuer.json'), ISSUER_PORT: String(await freePort()) };
      const state = await loadDevIssuer({ env });
      assert.equal(state.audience, DEV_AUDIENCE);
      assert.equal(DEV_AUDIENCE, 'urn:middle-management:local');
      const token = await signDevToken({ state, sub: 'tester', groups: ['ops'] });
      assert.deepEqual({ ...decodeJwt(token), iat: 0, exp: 0, jti: '' }, { iss: state.issuer, aud: DEV_AUDIENCE, sub: 'tester', groups: ['ops'], username: 'tester', client_id: CLI_CLIENT_ID, iat: 0, exp: 0, jti: '' });
      const verify = () =>
        createTokenVerifier(loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_JWT_ISSUER: state.issuer, MANAGE_JWT_AUDIENCE: DEV_AUDIENCE, MANAGE_AUDIT_TABLE: 't' }, ['echo'])).verify(token);
      for (let start = 0; start < 2; start++) {
        const running = await startDevIssuer(await loadDevIssuer({ env }));
        try {
          const actor = await verify();
          assert.equal(actor.subject, 'tester');
          assert.deepEqual(actor.groups, ['ops']);
        } finally {
          await running.close();
        }
      }

      // A key file of the issuer before the provider (ES256, another audience) is replaced, on the same port.
      await writeFile(env.DEV_ISSUER_FILE, JSON.stringify({ issuer: 'http://127.0.0.1:4123', audience: 'middle-management-local', port: 4123, kid: 'k', alg: 'ES256', privateJwk: { kty: 'EC', d: 'x' }, publicJwk: { kty: 'EC' } }));
      const upgraded = await loadDevIssuer({ env: { DEV_ISSUER_FILE: env.DEV_ISSUER_FILE } });
      assert.equal(upgraded.alg, 'RS256');
      assert.equal(upgraded.port, 4123);
      assert.equal(upgraded.audience, DEV_AUDIENCE);
      assert.equal(JSON.parse(await readFile(env.DEV_ISSUER_FILE, 'utf8')).kid, upgraded.kid);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
