/**
 * Issue 12: the server against a real OpenID provider (oidc-provider on
 * loopback), with token shapes of the providers teams run — Entra (`roles`),
 * Keycloak (`realm_access.roles`, `/group` paths), Auth0 (`permissions`,
 * trailing-slash issuer), Okta (`groups` under `/oauth2/default`), Google (id
 * tokens). Tokens are obtained as those providers' users obtain them: client
 * credentials for CI, the device grant (its pages driven from the test) for
 * people, RFC 8707 resources for JWT access tokens. Each runs a command
 * through the handler: allowed by group where it should be, 403 where not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UNAUTHORIZED_MESSAGE } from '../../src/errors.js';
import { startOidcProvider, decodeJwt, type TestOidcProvider } from '../support/oidc-provider.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
const providers: TestOidcProvider[] = [];
const GROUPS = JSON.stringify({ echo: ['ops'] });

before(async () => {
  stack = await startStack({ env: { MANAGE_COMMAND_GROUPS: GROUPS, MANAGE_AUDITOR_GROUPS: 'auditors' } });
});
after(async () => {
  await Promise.all([stack.close(), ...providers.map((p) => p.close())]);
});

async function provider(options: Parameters<typeof startOidcProvider>[0]) {
  const op = await startOidcProvider(options);
  providers.push(op);
  return op;
}

/** A handler that trusts only these issuers (the test issuer of the stack is dropped). */
function trusting(issuers: unknown[], env: Record<string, string> = {}) {
  return stack.withEnv({ MANAGE_JWT_ISSUER: undefined, MANAGE_JWT_AUDIENCE: undefined, MANAGE_JWT_ISSUERS: JSON.stringify(issuers), ...env });
}

const echo = (target: TestStack, token: string) => target.http({ path: '/__manage__/echo', token, body: { data: { message: 'hi' } } });
const noop = (target: TestStack, token: string) => target.http({ path: '/__manage__/noop', token });

async function assertAllowed(target: TestStack, token: string) {
  const response = await echo(target, token);
  assert.equal(response.status, 200, response.raw);
  assert.deepEqual(response.body.result, { message: 'hi' });
}
async function assertForbidden(target: TestStack, token: string) {
  const response = await echo(target, token);
  assert.equal(response.status, 403, response.raw);
  assert.equal(response.body.error.code, 'Forbidden');
  // Signed in all the same: a command without group rules runs.
  assert.equal((await noop(target, token)).status, 200);
}
async function assertRefused(target: TestStack, token: string) {
  const response = await noop(target, token);
  assert.equal(response.status, 401, response.raw);
  assert.deepEqual(response.body, { error: { code: 'Unauthorized', message: UNAUTHORIZED_MESSAGE } });
  assert.equal(response.headers['www-authenticate'], 'Bearer');
}

/** The parsed `auth.*` log lines of a handler. */
function authLogs(target: TestStack, event = 'auth.token_refused') {
  return target.logs.map((line) => JSON.parse(line)).filter((entry) => entry.event === event);
}

/** Background work (the cold-start issuer check) gets a moment to finish. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

describe('Entra ID shape: app roles in `roles`, client credentials', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await provider({
      path: '/tenant-id/v2.0',
      resources: { 'api://mm': {} },
      clients: [
        { clientId: 'ci-ops', clientSecret: 'ci-ops-secret-000000000000000000000000', claims: { roles: ['ops'] } },
        { clientId: 'ci-viewer', clientSecret: 'ci-viewer-secret-0000000000000000000000', claims: { roles: 'viewer' } },
      ],
    });
  });

  it('a CI client with the app role runs the command; one without gets 403', async () => {
    const target = trusting([{ issuer: op.issuer, audience: 'api://mm', groupsClaim: 'roles', tokenUse: 'access' }]);
    const ops = await op.clientCredentials({ clientId: 'ci-ops', clientSecret: 'ci-ops-secret-000000000000000000000000', resource: 'api://mm' });
    const viewer = await op.clientCredentials({ clientId: 'ci-viewer', clientSecret: 'ci-viewer-secret-0000000000000000000000', resource: 'api://mm' });
    assert.equal(decodeJwt(ops.access_token).header.typ, 'at+jwt');
    await assertAllowed(target, ops.access_token);
    await assertForbidden(target, viewer.access_token);
    // The audit names the client (its `sub`) and the groups it was judged by.
    const list = await target.http({ method: 'GET', path: '/__manage__/executions', token: ops.access_token });
    assert.equal(list.status, 200, list.raw);
    assert.ok(JSON.stringify(list.body.executions[0]).includes('ci-ops'), list.raw);
  });

  it('discovery and the JWKS are fetched once per cold start', async () => {
    const discoveries = op.hits('/.well-known/openid-configuration');
    const jwks = op.hits('/jwks');
    const target = trusting([{ issuer: op.issuer, audience: 'api://mm', groupsClaim: 'roles' }]);
    const token = (await op.clientCredentials({ clientId: 'ci-ops', clientSecret: 'ci-ops-secret-000000000000000000000000', resource: 'api://mm' })).access_token;
    await Promise.all([1, 2, 3, 4].map(() => assertAllowed(target, token)));
    await assertAllowed(target, token);
    assert.equal(op.hits('/.well-known/openid-configuration') - discoveries, 1);
    assert.equal(op.hits('/jwks') - jwks, 1);
    const ready = authLogs(target, 'auth.issuer_ready');
    assert.equal(ready.length, 1);
    assert.equal(ready[0].jwksUri, op.jwksUri);
    assert.equal(ready[0].jwksSource, 'discovery');
  });
});

describe('Keycloak shape: `realm_access.roles`, `/group` paths, device grant', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await provider({
      path: '/realms/ops',
      accounts: {
        alice: { realm_access: { roles: ['ops', 'offline_access'] }, groups: ['/ops'] },
        bob: { realm_access: { roles: ['viewer'] }, groups: ['/eng/ops'] },
      },
    });
  });

  it('realm roles decide when `realm_access.roles` is the groups claim', async () => {
    const target = trusting([{ issuer: op.issuer, audience: op.resource, groupsClaim: 'realm_access.roles', tokenUse: 'access' }]);
    const alice = await op.deviceGrant({ account: 'alice', resource: op.resource });
    const bob = await op.deviceGrant({ account: 'bob', resource: op.resource });
    await assertAllowed(target, alice.access_token);
    await assertForbidden(target, bob.access_token);
  });

  it('group `/ops` counts as `ops`; the subgroup `/eng/ops` does not', async () => {
    const target = trusting([{ issuer: op.issuer, audience: op.resource, groupsClaim: 'groups' }]);
    await assertAllowed(target, (await op.deviceGrant({ account: 'alice', resource: op.resource })).access_token);
    await assertForbidden(target, (await op.deviceGrant({ account: 'bob', resource: op.resource })).access_token);
    // And a rule written with the path matches the path.
    const byPath = trusting([{ issuer: op.issuer, audience: op.resource, groupsClaim: 'groups' }], { MANAGE_COMMAND_GROUPS: JSON.stringify({ echo: ['/eng/ops'] }) });
    await assertAllowed(byPath, (await op.deviceGrant({ account: 'bob', resource: op.resource })).access_token);
  });

  it('several claims at once: the union of their groups', async () => {
    const target = trusting([{ issuer: op.issuer, audience: op.resource, groupsClaim: ['realm_access.roles', 'groups'] }], {
      MANAGE_COMMAND_GROUPS: JSON.stringify({ echo: ['eng/ops'] }),
    });
    await assertAllowed(target, (await op.deviceGrant({ account: 'bob', resource: op.resource })).access_token);
  });
});

describe('Auth0 shape: `permissions`, issuer with a trailing slash', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await provider({
      trailingSlash: true,
      resources: { 'https://mm.example/api': {} },
      clients: [
        { clientId: 'deployer', clientSecret: 'deployer-secret-00000000000000000000000', claims: { permissions: ['ops', 'read:executions'] } },
        { clientId: 'reader', clientSecret: 'reader-secret-000000000000000000000000000', claims: { permissions: ['read:executions'] } },
      ],
    });
  });
  const token = async (clientId: string, clientSecret: string) => (await op.clientCredentials({ clientId, clientSecret, resource: 'https://mm.example/api' })).access_token;

  it('the issuer spelled as its tokens spell it: `permissions` decide', async () => {
    assert.ok(op.issuer.endsWith('/'));
    const target = trusting([{ issuer: op.issuer, audience: 'https://mm.example/api', groupsClaim: 'permissions', tokenUse: 'access' }]);
    await assertAllowed(target, await token('deployer', 'deployer-secret-00000000000000000000000'));
    await assertForbidden(target, await token('reader', 'reader-secret-000000000000000000000000000'));
  });

  it('the issuer configured without its slash: 401, and the log and the cold-start check say why', async () => {
    const target = trusting([{ issuer: op.issuer.slice(0, -1), audience: 'https://mm.example/api', groupsClaim: 'permissions' }]);
    await settle();
    const check = authLogs(target, 'auth.issuer_check_failed');
    assert.equal(check.length, 1);
    assert.equal(check[0].level, 'warn');
    assert.equal(check[0].reason, 'discovery_issuer_mismatch');
    assert.match(check[0].outcome, /a trailing "\/" differs/);
    await assertRefused(target, await token('deployer', 'deployer-secret-00000000000000000000000'));
    const [line] = authLogs(target);
    assert.equal(line.reason, 'unknown_issuer');
    assert.equal(line.issuer, op.issuer);
    assert.match(line.hint, /only by a trailing "\/"/);
  });
});

describe('Okta shape: `groups` (the default claim), custom authorization server path', () => {
  it('a person signed in by the device grant: groups decide; a one-string group is one group', async () => {
    const op = await provider({
      path: '/oauth2/default',
      accounts: { carol: { groups: ['Everyone', 'ops'] }, dave: { groups: 'not ops' }, erin: { groups: 'ops' } },
    });
    const target = trusting([{ issuer: op.issuer, audience: op.resource }]);
    await assertAllowed(target, (await op.deviceGrant({ account: 'carol', resource: op.resource })).access_token);
    // Issue 11 item 10: "not ops" is one group, not "not" and "ops".
    await assertForbidden(target, (await op.deviceGrant({ account: 'dave', resource: op.resource })).access_token);
    await assertAllowed(target, (await op.deviceGrant({ account: 'erin', resource: op.resource })).access_token);
  });
});

describe('Google shape: id tokens (aud = the OAuth client id)', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await provider({ accounts: { frank: { email: 'frank@example.com', email_verified: true, groups: ['ops'] } } });
  });

  it('with tokenUse id the id token is accepted and an access token of the same sign-in is not', async () => {
    const target = trusting([{ issuer: op.issuer, audience: op.clients.cli.clientId, tokenUse: 'id' }]);
    const signIn = await op.deviceGrant({ account: 'frank', resource: op.resource, scope: 'openid email offline_access manage:run' });
    assert.ok(signIn.id_token);
    assert.equal((await noop(target, signIn.id_token!)).status, 200);
    await assertRefused(target, signIn.access_token);
    const [line] = authLogs(target);
    // It states its type (typ at+jwt), which is checked before the audience (the resource, not the client).
    assert.equal(line.reason, 'wrong_token_type');
    assert.equal(line.statedTokenType, 'access');
    assert.equal(line.typ, 'at+jwt');
  });

  it('with tokenUse access an id token with the right audience is refused: wrong_token_type', async () => {
    const target = trusting([{ issuer: op.issuer, audience: [op.resource, op.clients.cli.clientId], tokenUse: 'access' }]);
    const signIn = await op.deviceGrant({ account: 'frank', resource: op.resource, scope: 'openid email manage:run' });
    assert.equal((await noop(target, signIn.access_token)).status, 200);
    await assertRefused(target, signIn.id_token!);
    const [line] = authLogs(target);
    assert.equal(line.reason, 'wrong_token_type');
    assert.equal(line.expectedTokenUse, 'access');
    assert.equal(line.statedTokenType, 'none');
  });
});

describe('what the operator sees when a token is refused', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await provider({ accounts: { alice: { groups: ['ops'] } } });
  });
  const ciToken = async () => (await op.clientCredentials({ resource: op.resource })).access_token;

  function assertNoTokenIn(target: TestStack, token: string) {
    const logs = target.logs.join('\n');
    const [, , signature] = token.split('.');
    assert.ok(!logs.includes(token), 'no token in the log');
    assert.ok(!logs.includes(signature!), 'no signature in the log');
  }

  it('a wrong audience: 401 for the caller; the log names both audiences', async () => {
    const target = trusting([{ issuer: op.issuer, audience: 'https://other.example/api' }]);
    const token = await ciToken();
    await assertRefused(target, token);
    const [line] = authLogs(target);
    assert.equal(line.level, 'warn');
    assert.equal(line.reason, 'wrong_audience');
    assert.equal(line.audience, op.resource);
    assert.deepEqual(line.expectedAudience, ['https://other.example/api']);
    assert.equal(line.configuredIssuer, op.issuer);
    assert.equal(line.kid, decodeJwt(token).header.kid);
    assertNoTokenIn(target, token);
  });

  it('a misconfigured JWKS URI: 401; the log names the URI and what it answered', async () => {
    const jwksUri = `${op.origin}/no-such-jwks`;
    const target = trusting([{ issuer: op.issuer, audience: op.resource, jwksUri }]);
    const token = await ciToken();
    await assertRefused(target, token);
    const [line] = authLogs(target);
    assert.equal(line.reason, 'jwks_fetch_failed');
    assert.equal(line.jwksUri, jwksUri);
    assert.match(line.outcome, /HTTP 404/);
    assertNoTokenIn(target, token);
  });

  it('an unreachable issuer: the cold start only warns; its tokens get 401 with discovery_failed', async () => {
    const gone = await startOidcProvider({});
    const issuer = gone.issuer;
    const token = (await gone.clientCredentials({ resource: gone.resource })).access_token;
    await gone.close();
    const target = trusting([{ issuer, audience: gone.resource }]);
    await settle();
    const [check] = authLogs(target, 'auth.issuer_check_failed');
    assert.equal(check.level, 'warn');
    assert.equal(check.discovery, `${issuer}/.well-known/openid-configuration`);
    assert.match(check.consequence, /refused until discovery answers/);
    await assertRefused(target, token);
    const [line] = authLogs(target);
    assert.equal(line.reason, 'discovery_failed');
    assert.equal(line.discovery, `${issuer}/.well-known/openid-configuration`);
  });

  it('an opaque access token (no resource asked for): 401, reason malformed', async () => {
    const target = trusting([{ issuer: op.issuer, audience: op.resource }]);
    const opaque = (await op.clientCredentials({})).access_token;
    assert.equal(opaque.split('.').length, 1);
    await assertRefused(target, opaque);
    const [line] = authLogs(target);
    assert.equal(line.reason, 'malformed');
    assert.match(line.detail, /opaque access token\? Ask the issuer for a JWT access token/);
    assertNoTokenIn(target, opaque);
  });

  it('two issuers at once, each with its own audience', async () => {
    const other = await provider({
      path: '/second',
      resources: { 'https://second.example/api': {}, [op.resource]: {} },
      accounts: { zed: { roles: ['ops'] } },
    });
    const target = trusting([
      { issuer: op.issuer, audience: op.resource },
      { issuer: other.issuer, audience: 'https://second.example/api', groupsClaim: 'roles' },
    ]);
    await assertAllowed(target, (await op.deviceGrant({ account: 'alice', resource: op.resource })).access_token);
    await assertAllowed(target, (await other.deviceGrant({ account: 'zed', resource: 'https://second.example/api' })).access_token);
    // The second issuer's token for the first one's audience: each issuer has its own audience.
    await assertRefused(target, (await other.clientCredentials({ resource: op.resource })).access_token);
    assert.equal(authLogs(target)[0].reason, 'wrong_audience');
  });
});
