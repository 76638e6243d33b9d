/**
 * Issue 12, "Done when", through `mm`: for each provider shape, the real
 * provider software on loopback (oidc-provider shaped as Entra ID, Keycloak,
 * Auth0, Okta and Google; cognito-local for Cognito), the real handler
 * configured with the variables docs/identity-providers.md gives for that
 * provider, and `mm` configured with that page's `mm configure` line (for
 * people, and for CI where the page has one). `mm` gets every token itself —
 * the device grant (the provider's pages driven from the test as a person in a
 * browser would), client credentials, a Cognito password sign-in — and then
 * `mm run echo` exits 0 for a member of the required group and 4 (forbidden,
 * CONTRACT §7) for a non-member, who can still run a command without group
 * rules (`noop`), so the 4 is about groups, not sign-in.
 *
 * The doc's placeholders are filled with the test provider's values (issuer,
 * token endpoint, client ids); where the real provider decides something on
 * its side (Okta's authorization-server audience, Entra's scope-selected API,
 * Keycloak's audience mapper, Auth0's `audience` parameter) the test provider
 * is set up to decide it the same way (see shaped-provider.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type TestStack } from '../support/stack.js';
import { serveHandler, type ServedHandler } from '../support/http-server.js';
import { decodeJwt, type TestOidcProvider } from '../support/oidc-provider.js';
import { buildCli, makeHome, mm as runMm, type MmOptions, type MmResult } from '../cli/helpers.js';
import { startCognitoLocal, type CognitoLocal, type Pool } from '../cli/cognito-local.js';
import { startShapedProvider, type ShapedProviderOptions } from './shaped-provider.js';

const T = { timeout: 120_000 };
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const OPS_ONLY = JSON.stringify({ echo: ['ops'] });
const FORBIDDEN = 4;

let stack: TestStack;
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  buildCli();
  stack = await startStack();
});
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await stack?.close();
});

/** The handler with exactly these variables for identity (the stack's own test issuer dropped), over loopback HTTP. */
async function handlerWith(env: Record<string, string>): Promise<{ url: string; target: TestStack }> {
  const target = stack.withEnv({ MANAGE_JWT_ISSUER: undefined, MANAGE_JWT_AUDIENCE: undefined, MANAGE_COMMAND_GROUPS: OPS_ONLY, ...env });
  const served: ServedHandler = await serveHandler(target.handler);
  closers.push(() => served.close());
  return { url: served.url, target };
}

async function provider(options: ShapedProviderOptions): Promise<TestOidcProvider> {
  const op = await startShapedProvider(options);
  closers.push(() => op.close());
  return op;
}

/** One person's (or one CI job's) machine: its own home and mm configuration. */
function machine() {
  const home = makeHome();
  closers.push(async () => home.cleanup());
  const run = (args: string[], options: MmOptions = {}): Promise<MmResult> =>
    runMm(args, { timeoutMs: 60_000, ...options, env: { HOME: home.home, MM_CONFIG_DIR: home.configDir, ...options.env } });
  return {
    run,
    /** The claims of the token mm cached for a profile (what it sends). */
    claims(profile = 'prod'): Record<string, any> {
      return decodeJwt(JSON.parse(readFileSync(join(home.configDir, 'tokens', `${profile}.json`), 'utf8')).accessToken).payload;
    },
    /** `mm args` that signs in by the device grant; the test approves the code in op's pages as `account`. */
    withDevice(op: TestOidcProvider, account: string, args: string[], options: MmOptions = {}) {
      let approving: Promise<void> | undefined;
      return run(args, {
        ...options,
        onStderr: (soFar) => {
          const url = /\(or open (\S+)\)/.exec(soFar)?.[1];
          if (url && !approving) {
            approving = op.approveDevice(url, account).catch((error) => {
              process.stderr.write(`approving the device code failed: ${error}\n`);
            });
          }
        },
      });
    },
  };
}
type Machine = ReturnType<typeof machine>;

async function configure(m: Machine, args: string[], options: MmOptions = {}) {
  const r = await m.run(['configure', ...args], options);
  assert.equal(r.code, 0, `mm configure ${args.join(' ')}: ${r.stderr}`);
}

function assertRan(r: MmResult, what: string) {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).result.message, 'hi', r.stdout);
}
function assertForbidden(r: MmResult, what: string, options: { signedInNow?: boolean } = {}) {
  assert.equal(r.code, FORBIDDEN, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).error.code, 'Forbidden', r.stdout);
  if (!options.signedInNow) assert.doesNotMatch(r.stderr, /To sign in, open/, 'a 403 starts no sign-in');
}
const echo = ['run', 'echo', 'message=hi', '--json'];

/** Signs in a person with the device grant through their first `mm run`, and judges the group decision. */
async function personRuns(m: Machine, op: TestOidcProvider, account: string, allowed: boolean, profile = 'prod') {
  const first = await m.withDevice(op, account, ['--profile', profile, ...echo]);
  assert.match(first.stderr, /To sign in, open /, 'the first run signed in by the device grant');
  if (allowed) assertRan(first, `${account} (member)`);
  else {
    assertForbidden(first, `${account} (not a member)`, { signedInNow: true });
    // Signed in all the same: a command without group rules runs, from the cache (no second sign-in).
    const noop = await m.run(['--profile', profile, 'run', 'noop']);
    assert.equal(noop.code, 0, noop.stderr);
    assert.doesNotMatch(noop.stderr, /To sign in, open/);
  }
}

describe('Microsoft Entra ID through mm: app roles in `roles`', () => {
  const API_APP_ID = '3f2a8c1e-7b4d-4e0a-9c55-1d2e3f4a5b6c';
  const CI_OPS = { clientId: 'b7e1c0de-0000-4000-8000-00000000c1c1', clientSecret: 'entra-ci-ops-secret-000000000000000000000' };
  const CI_VIEWER = { clientId: 'b7e1c0de-0000-4000-8000-00000000c2c2', clientSecret: 'entra-ci-viewer-secret-0000000000000000000' };
  const PUBLIC_CLIENT = 'a1b2c3d4-0000-4000-8000-0000000000aa';
  let op: TestOidcProvider;
  let url: string;

  before(async () => {
    op = await provider({
      path: '/tenant-id/v2.0',
      // The scope names the API (api://mm/…); Entra's v2 tokens then carry the API's application id as `aud`.
      resources: { 'api://mm': { audience: API_APP_ID, scope: 'api://mm/access_as_user api://mm/.default' } },
      defaultResource: 'api://mm',
      accounts: { alice: { roles: ['ops'], name: 'Alice' }, bob: { roles: ['viewer'] } },
      clients: [
        { clientId: PUBLIC_CLIENT, grantTypes: [DEVICE_GRANT, 'refresh_token'] },
        { ...CI_OPS, claims: { roles: ['ops'] } },
        { ...CI_VIEWER, claims: { roles: ['viewer'] } },
      ],
      postAuthClients: [CI_OPS.clientId, CI_VIEWER.clientId],
    });
    // docs/identity-providers.md, Entra ID, "Server".
    ({ url } = await handlerWith({ MANAGE_JWT_ISSUER: op.issuer, MANAGE_JWT_AUDIENCE: `${API_APP_ID},api://mm`, MANAGE_JWT_GROUPS_CLAIM: 'roles' }));
  });

  test('people (device grant): a user with the app role ops runs echo; one without gets exit 4', T, async () => {
    const alice = machine();
    const bob = machine();
    for (const m of [alice, bob]) {
      await configure(m, ['--profile', 'prod', '--url', url, '--auth', 'device', '--issuer', op.issuer, '--client-id', PUBLIC_CLIENT, '--scope', 'api://mm/access_as_user openid profile offline_access']);
    }
    await personRuns(alice, op, 'alice', true);
    await personRuns(bob, op, 'bob', false);
    const claims = alice.claims();
    assert.equal(claims.iss, op.issuer);
    assert.equal(claims.aud, API_APP_ID, 'a v2 token: aud is the API application id');
    assert.deepEqual(claims.roles, ['ops']);
  });

  test('CI (client credentials, --scope api://mm/.default, --client-auth post): the app role decides', T, async () => {
    for (const [client, allowed] of [[CI_OPS, true], [CI_VIEWER, false]] as const) {
      const ci = machine();
      await configure(ci, ['--profile', 'ci', '--url', url, '--auth', 'client_credentials', '--token-url', op.tokenEndpoint, '--client-id', client.clientId, '--scope', 'api://mm/.default', '--client-auth', 'post']);
      const r = await ci.run(['--profile', 'ci', ...echo], { env: { MM_CLIENT_SECRET: client.clientSecret } });
      assert.equal(ci.claims('ci').sub, client.clientId);
      assert.equal(ci.claims('ci').aud, API_APP_ID);
      if (allowed) assertRan(r, 'CI client with the app role ops');
      else assertForbidden(r, 'CI client without it');
    }
  });
});

describe('Keycloak through mm: realm roles in `realm_access.roles`, group paths in `groups`', () => {
  const CI = { clientId: 'mm-ci', clientSecret: 'keycloak-mm-ci-secret-00000000000000000000' };
  const CI_VIEWER = { clientId: 'mm-ci-viewer', clientSecret: 'keycloak-viewer-secret-0000000000000000000' };
  let op: TestOidcProvider;
  let url: string;
  let groupsUrl: string;

  before(async () => {
    op = await provider({
      path: '/realms/ops',
      // The client scope mm-api with an Audience mapper: every access token of the realm's clients carries aud mm-api.
      resources: { 'https://kc.test/realms/ops/mm-api': { audience: 'mm-api' } },
      defaultResource: 'https://kc.test/realms/ops/mm-api',
      // Keycloak also marks its access tokens with the claim `typ: Bearer`.
      accounts: {
        alice: { typ: 'Bearer', realm_access: { roles: ['ops', 'offline_access'] }, groups: ['/ops'] },
        bob: { typ: 'Bearer', realm_access: { roles: ['viewer', 'offline_access'] }, groups: ['/eng/ops'] },
      },
      clients: [
        { clientId: 'mm-cli', grantTypes: [DEVICE_GRANT, 'refresh_token'] },
        { ...CI, claims: { typ: 'Bearer', realm_access: { roles: ['ops'] } } },
        { ...CI_VIEWER, claims: { typ: 'Bearer', realm_access: { roles: ['viewer'] } } },
      ],
    });
    // docs/identity-providers.md, Keycloak, "Server" (and its alternative groups claim, with full group paths).
    const server = { MANAGE_JWT_ISSUER: op.issuer, MANAGE_JWT_AUDIENCE: 'mm-api', MANAGE_JWT_TOKEN_USE: 'access' };
    ({ url } = await handlerWith({ ...server, MANAGE_JWT_GROUPS_CLAIM: 'realm_access.roles' }));
    ({ url: groupsUrl } = await handlerWith({ ...server, MANAGE_JWT_GROUPS_CLAIM: 'groups' }));
  });

  test('people (device grant): realm role ops runs echo, viewer gets exit 4; with `groups`, /ops runs and /eng/ops gets exit 4', T, async () => {
    const alice = machine();
    const bob = machine();
    for (const m of [alice, bob]) {
      await configure(m, ['--profile', 'prod', '--url', url, '--auth', 'device', '--issuer', op.issuer, '--client-id', 'mm-cli', '--scope', 'openid profile offline_access']);
    }
    await personRuns(alice, op, 'alice', true);
    await personRuns(bob, op, 'bob', false);
    assert.equal(alice.claims().aud, 'mm-api');
    assert.equal(alice.claims().typ, 'Bearer');
    assert.deepEqual(alice.claims().realm_access, { roles: ['ops', 'offline_access'] });
    // The same tokens against a stage that reads group paths (`--url` over the profile's; the cached token is reused).
    assertRan(await alice.run(['--profile', 'prod', '--url', groupsUrl, ...echo]), 'alice in /ops');
    assertForbidden(await bob.run(['--profile', 'prod', '--url', groupsUrl, ...echo]), 'bob in /eng/ops only');
  });

  test('CI (client credentials of a service account): its realm roles decide', T, async () => {
    for (const [client, allowed] of [[CI, true], [CI_VIEWER, false]] as const) {
      const ci = machine();
      await configure(ci, ['--profile', 'ci', '--url', url, '--auth', 'client_credentials', '--token-url', op.tokenEndpoint, '--client-id', client.clientId]);
      const r = await ci.run(['--profile', 'ci', ...echo], { env: { MM_CLIENT_SECRET: client.clientSecret } });
      if (allowed) assertRan(r, 'service account with realm role ops');
      else assertForbidden(r, 'service account without it');
    }
  });
});

describe('Auth0 through mm: `permissions`, issuer with a trailing slash, the `audience` parameter', () => {
  const API = 'https://mm.example.com/api';
  const NATIVE = 'auth0NativeAppClientId0001';
  const DEPLOYER = { clientId: 'auth0M2mDeployer0001', clientSecret: 'auth0-m2m-deployer-secret-0000000000000000' };
  const READER = { clientId: 'auth0M2mReader00001', clientSecret: 'auth0-m2m-reader-secret-00000000000000000' };
  let op: TestOidcProvider;
  let url: string;

  before(async () => {
    op = await provider({
      trailingSlash: true,
      audienceParameter: true,
      resources: { [API]: { scope: 'ops read:executions' } },
      accounts: { alice: { permissions: ['ops', 'read:executions'] }, bob: { permissions: ['read:executions'] } },
      clients: [
        { clientId: NATIVE, grantTypes: [DEVICE_GRANT, 'refresh_token'] },
        { ...DEPLOYER, claims: { permissions: ['ops'] } },
        { ...READER, claims: { permissions: ['read:executions'] } },
      ],
      postAuthClients: [DEPLOYER.clientId, READER.clientId],
    });
    assert.ok(op.issuer.endsWith('/'));
    // docs/identity-providers.md, Auth0, "Server": the issuer copied exactly, slash included.
    ({ url } = await handlerWith({ MANAGE_JWT_ISSUER: op.issuer, MANAGE_JWT_AUDIENCE: API, MANAGE_JWT_GROUPS_CLAIM: 'permissions' }));
  });

  test('people (device grant with --audience): the permission ops runs echo; without it, exit 4', T, async () => {
    const alice = machine();
    const bob = machine();
    for (const m of [alice, bob]) {
      await configure(m, ['--profile', 'prod', '--url', url, '--auth', 'device', '--issuer', op.issuer, '--client-id', NATIVE, '--audience', API, '--scope', 'openid profile offline_access']);
    }
    await personRuns(alice, op, 'alice', true);
    await personRuns(bob, op, 'bob', false);
    assert.equal(alice.claims().iss, op.issuer, 'the issuer with its trailing slash');
    assert.equal(alice.claims().aud, API, 'the audience parameter chose the API');
  });

  test('CI (M2M client credentials with --audience, --client-auth post): permissions decide', T, async () => {
    for (const [client, allowed] of [[DEPLOYER, true], [READER, false]] as const) {
      const ci = machine();
      await configure(ci, ['--profile', 'ci', '--url', url, '--auth', 'client_credentials', '--token-url', op.tokenEndpoint, '--client-id', client.clientId, '--audience', API, '--client-auth', 'post']);
      const r = await ci.run(['--profile', 'ci', ...echo], { env: { MM_CLIENT_SECRET: client.clientSecret } });
      assert.equal(ci.claims('ci').aud, API);
      if (allowed) assertRan(r, 'M2M app with the permission ops');
      else assertForbidden(r, 'M2M app without it');
    }
  });

  test('the doc\'s warning holds: without --audience the token is opaque, and mm says so (exit 3, no run)', T, async () => {
    const ci = machine();
    await configure(ci, ['--profile', 'ci', '--url', url, '--auth', 'client_credentials', '--token-url', op.tokenEndpoint, '--client-id', DEPLOYER.clientId, '--client-auth', 'post']);
    const r = await ci.run(['--profile', 'ci', 'run', 'noop'], { env: { MM_CLIENT_SECRET: DEPLOYER.clientSecret } });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /The issuer returned an opaque token/);
    assert.match(r.stderr, /--audience/);
  });
});

describe('Okta through mm: `groups` (the default claim), custom authorization server', () => {
  const NATIVE = '0oaNativeApp000000001';
  const SERVICE = { clientId: '0oaServiceApp00000001', clientSecret: 'okta-service-app-secret-00000000000000000' };
  let op: TestOidcProvider;
  let url: string;

  before(async () => {
    op = await provider({
      path: '/oauth2/default',
      // The authorization server's Audience: every access token it issues is a JWT for api://mm.
      resources: { 'api://mm': { scope: 'mm.ops' } },
      defaultResource: 'api://mm',
      accounts: { carol: { groups: ['Everyone', 'ops'] }, dave: { groups: ['Everyone'] } },
      clients: [{ clientId: NATIVE, grantTypes: [DEVICE_GRANT, 'refresh_token'] }, SERVICE],
    });
    // docs/identity-providers.md, Okta, "Server" (groups claim by default).
    ({ url } = await handlerWith({ MANAGE_JWT_ISSUER: op.issuer, MANAGE_JWT_AUDIENCE: 'api://mm' }));
  });

  test('people (device grant): a member of ops runs echo; a non-member gets exit 4', T, async () => {
    const carol = machine();
    const dave = machine();
    for (const m of [carol, dave]) {
      await configure(m, ['--profile', 'prod', '--url', url, '--auth', 'device', '--issuer', op.issuer, '--client-id', NATIVE, '--scope', 'openid profile offline_access']);
    }
    await personRuns(carol, op, 'carol', true);
    await personRuns(dave, op, 'dave', false);
    assert.equal(carol.claims().aud, 'api://mm');
    assert.deepEqual(carol.claims().groups, ['Everyone', 'ops']);
  });

  test('CI (client credentials, --scope mm.ops): no user groups — noop runs, the ops-only echo gets exit 4', T, async () => {
    const ci = machine();
    await configure(ci, ['--profile', 'ci', '--url', url, '--auth', 'client_credentials', '--token-url', op.tokenEndpoint, '--client-id', SERVICE.clientId, '--scope', 'mm.ops']);
    const env = { MM_CLIENT_SECRET: SERVICE.clientSecret };
    const noop = await ci.run(['--profile', 'ci', 'run', 'noop'], { env });
    assert.equal(noop.code, 0, noop.stderr);
    assertForbidden(await ci.run(['--profile', 'ci', ...echo], { env }), 'service app (no groups)');
  });
});

describe('Google through mm: ID tokens (tokenUse id), the Workspace domain `hd` as the group', () => {
  const CLIENT = { clientId: '1234567890-abcdefghij.apps.googleusercontent.com', clientSecret: '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00' };
  let op: TestOidcProvider;
  let url: string;

  before(async () => {
    op = await provider({
      // No resource: Google's access tokens are opaque; the ID token is what the server checks.
      accounts: {
        frank: { email: 'frank@example.com', email_verified: true, hd: 'example.com' },
        grace: { email: 'grace@gmail.com', email_verified: true },
      },
      clients: [{ ...CLIENT, grantTypes: [DEVICE_GRANT, 'refresh_token'] }],
      // Google sets `hd` in ID tokens of Workspace accounts.
      claimsByScope: { openid: ['sub', 'hd'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
    });
    // docs/identity-providers.md, Google, "Server" and "Groups".
    ({ url } = await handlerWith({
      MANAGE_JWT_ISSUER: op.issuer,
      MANAGE_JWT_AUDIENCE: `${CLIENT.clientId},mm-ci`,
      MANAGE_JWT_TOKEN_USE: 'id',
      MANAGE_JWT_GROUPS_CLAIM: 'hd',
      MANAGE_COMMAND_GROUPS: JSON.stringify({ echo: ['example.com'] }),
    }));
  });

  test('people (device grant, --client-secret -, --token-use id): the Workspace account runs echo; a personal account gets exit 4', T, async () => {
    const frank = machine();
    const grace = machine();
    for (const m of [frank, grace]) {
      await configure(
        m,
        ['--profile', 'prod', '--url', url, '--auth', 'device', '--issuer', op.issuer, '--client-id', CLIENT.clientId, '--client-secret', '-', '--scope', 'openid email profile', '--token-use', 'id'],
        { input: `${CLIENT.clientSecret}\n` },
      );
    }
    await personRuns(frank, op, 'frank', true);
    await personRuns(grace, op, 'grace', false);
    // mm sends the ID token: aud is the OAuth client; hd names the Workspace domain.
    assert.equal(frank.claims().aud, CLIENT.clientId);
    assert.equal(frank.claims().hd, 'example.com');
    assert.equal(grace.claims().hd, undefined);
  });
});

describe('Amazon Cognito (cognito-local) through mm: `cognito:groups`', () => {
  const PASSWORD = 'Correct-horse-battery-1';
  let cognito: CognitoLocal;
  let pool: Pool;
  let url: string;

  before(async () => {
    cognito = await startCognitoLocal();
    closers.push(() => cognito.close());
    pool = await cognito.createPool();
    await cognito.createUser(pool, 'olivia', PASSWORD, { groups: ['ops'] });
    await cognito.createUser(pool, 'victor', PASSWORD, { groups: ['viewers'] });
    // docs/identity-providers.md, Cognito: the emulator trusted as a generic issuer, as that page says.
    ({ url } = await handlerWith({
      MANAGE_JWT_ISSUERS: JSON.stringify([{ issuer: pool.issuer, audience: pool.clientId, jwksUri: pool.jwksUri, tokenUse: 'access', groupsClaim: 'cognito:groups' }]),
    }));
  });

  test('people (password sign-in, access token): a member of ops runs echo; a non-member gets exit 4', T, async () => {
    for (const [username, allowed] of [['olivia', true], ['victor', false]] as const) {
      const m = machine();
      await configure(m, ['--profile', 'prod', '--url', url, '--auth', 'cognito', '--region', 'eu-west-1', '--user-pool-id', pool.id, '--client-id', pool.clientId, '--username', username, '--cognito-endpoint', cognito.endpoint]);
      const r = await m.run(['--profile', 'prod', ...echo], { env: { MM_PASSWORD: PASSWORD } });
      assert.equal(m.claims().token_use, 'access');
      assert.equal(m.claims().client_id, pool.clientId);
      if (allowed) assertRan(r, `${username} (in ops)`);
      else {
        assertForbidden(r, `${username} (not in ops)`);
        const noop = await m.run(['--profile', 'prod', 'run', 'noop']);
        assert.equal(noop.code, 0, `signed in all the same, from the cache: ${noop.stderr}`);
      }
    }
  });
});
