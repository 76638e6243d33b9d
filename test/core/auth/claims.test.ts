/**
 * Groups claims, token types, audiences of the generic (OIDC) path, and the
 * operator's refusal log (reasons, rate limit, no token in it). Tokens are real,
 * signed at test time; the JWKS and discovery are served on loopback.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config.js';
import { claimAt, createTokenVerifier, groupsOf, REFUSAL_LOG_INTERVAL_MS } from '../../../src/auth/verifier.js';
import { Unauthorized, UNAUTHORIZED_MESSAGE } from '../../../src/errors.js';
import { startTestIssuer, type TestIssuer } from '../../support/issuer.js';

let issuer: TestIssuer;
before(async () => {
  issuer = await startTestIssuer('mm-test');
});
after(() => issuer.close());

function setup(env: Record<string, string> = {}, now?: () => number) {
  const lines: Record<string, any>[] = [];
  const raw: string[] = [];
  const config = loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_AUDIT_TABLE: 't', MANAGE_JWT_ISSUER: issuer.issuer, MANAGE_JWT_AUDIENCE: 'mm-test', ...env }, ['echo']);
  const verifier = createTokenVerifier(config, {
    logger: {
      log(level, event, fields) {
        raw.push(JSON.stringify({ level, event, ...fields }));
        lines.push({ level, event, ...fields });
      },
    },
    ...(now ? { now } : {}),
  });
  const refusals = () => lines.filter((line) => line.event === 'auth.token_refused');
  return { verifier, lines, raw, refusals };
}

async function refused(promise: Promise<unknown>) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Unauthorized);
    assert.equal(error.message, UNAUTHORIZED_MESSAGE);
    return true;
  });
}

describe('groups claims', () => {
  const payload = {
    groups: 'external auditors',
    roles: ['ops', 7, '', 'sre'],
    realm_access: { roles: ['ops-lead'] },
    'https://mm.example/roles': ['namespaced'],
    'cognito:groups': ['pool-group'],
    kc: ['/ops', '/eng/ops', '/'],
  };

  it('a string is ONE group (issue 11 item 10); arrays keep their non-empty strings', () => {
    assert.deepEqual(groupsOf(payload, ['groups']), ['external auditors']);
    assert.deepEqual(groupsOf(payload, ['roles']), ['ops', 'sre']);
  });

  it('paths: dots for nesting, an exact claim name first (namespaced URLs, cognito:groups)', () => {
    assert.deepEqual(groupsOf(payload, ['realm_access.roles']), ['ops-lead']);
    assert.deepEqual(groupsOf(payload, ['https://mm.example/roles']), ['namespaced']);
    assert.deepEqual(groupsOf(payload, ['cognito:groups', 'roles', 'groups']), ['pool-group', 'ops', 'sre', 'external auditors']);
    assert.equal(claimAt(payload, 'realm_access.missing'), undefined);
    assert.equal(claimAt(payload, 'groups.length'), undefined, 'no property of a string');
    assert.equal(claimAt(payload, 'constructor.name'), undefined, 'no inherited property');
    assert.equal(claimAt(payload, '__proto__'), undefined);
  });

  it('a group path counts with and without its leading slash; a subgroup never as its last segment', () => {
    assert.deepEqual(groupsOf(payload, ['kc']), ['/ops', 'ops', '/eng/ops', 'eng/ops', '/']);
  });

  it('through the verifier: MANAGE_JWT_GROUPS_CLAIM, default groups then cognito:groups; scope stays space-separated', async () => {
    const defaults = setup().verifier;
    const actor = await defaults.verify(await issuer.sign({ groups: 'not ops', scope: 'manage:run manage:read' }));
    assert.deepEqual(actor.groups, ['not ops']);
    assert.deepEqual(actor.scopes, ['manage:run', 'manage:read']);
    assert.deepEqual((await defaults.verify(await issuer.sign({ 'cognito:groups': ['ops'] }))).groups, ['ops']);
    assert.deepEqual((await defaults.verify(await issuer.sign({ scp: 'a b' }))).scopes, ['a', 'b']);

    const { verifier, lines } = setup({ MANAGE_JWT_GROUPS_CLAIM: 'realm_access.roles,permissions' });
    assert.deepEqual((await verifier.verify(await issuer.sign({ realm_access: { roles: ['ops'] }, permissions: 'deploy', groups: ['ignored'] }))).groups, ['ops', 'deploy']);
    // A token without any of the claims is still valid, but the operator is told where the groups were looked for.
    assert.deepEqual((await verifier.verify(await issuer.sign({ groups: ['ops'] }))).groups, []);
    const [hint] = lines.filter((line) => line.event === 'auth.groups_claim_missing');
    assert.deepEqual(hint?.groupsClaims, ['realm_access.roles', 'permissions']);
    assert.ok(hint?.claimsPresent.includes('groups'));
  });

  it('the username: cognito:username, username, then preferred_username', async () => {
    const { verifier } = setup();
    assert.equal((await verifier.verify(await issuer.sign({ preferred_username: 'kc-user' }))).username, 'kc-user');
    assert.equal((await verifier.verify(await issuer.sign({ preferred_username: 'x', username: 'y' }))).username, 'y');
  });
});

describe('token types and audiences on the generic path', () => {
  it('tokenUse access: RFC 9068 at+jwt, Cognito token_use, Keycloak typ Bearer pass; stated id or nothing does not', async () => {
    const { verifier, refusals } = setup({ MANAGE_JWT_TOKEN_USE: 'access' });
    await verifier.verify(await issuer.sign({}, { header: { typ: 'at+jwt' } }));
    await verifier.verify(await issuer.sign({}, { header: { typ: 'application/at+jwt' } }));
    await verifier.verify(await issuer.sign({ token_use: 'access' }));
    await verifier.verify(await issuer.sign({ typ: 'Bearer' }));
    await refused(verifier.verify(await issuer.sign({ token_use: 'id' })));
    await refused(verifier.verify(await issuer.sign({ typ: 'ID' })));
    await refused(verifier.verify(await issuer.sign({})));
    const [line] = refusals();
    assert.equal(line?.reason, 'wrong_token_type');
    assert.equal(line?.statedTokenType, 'id');
    assert.equal(line?.expectedTokenUse, 'access');
  });

  it('tokenUse id refuses what states it is an access token; unset refuses only refresh-like types', async () => {
    const id = setup({ MANAGE_JWT_TOKEN_USE: 'id' }).verifier;
    await id.verify(await issuer.sign({}));
    await id.verify(await issuer.sign({ token_use: 'id' }));
    await refused(id.verify(await issuer.sign({}, { header: { typ: 'at+jwt' } })));
    await refused(id.verify(await issuer.sign({ token_use: 'access' })));
    const unset = setup().verifier;
    await unset.verify(await issuer.sign({ token_use: 'id' }));
    await unset.verify(await issuer.sign({}, { header: { typ: 'at+jwt' } }));
    await refused(unset.verify(await issuer.sign({ typ: 'Refresh' })));
  });

  it('a Cognito access token (client_id, no aud) passes the generic path with tokenUse access, and only then', async () => {
    const cognitoShaped = () => issuer.sign({ aud: undefined, token_use: 'access', client_id: 'mm-test', 'cognito:groups': ['ops'] });
    const access = setup({ MANAGE_JWT_TOKEN_USE: 'access' }).verifier;
    assert.deepEqual((await access.verify(await cognitoShaped())).groups, ['ops']);
    await refused(access.verify(await issuer.sign({ aud: undefined, token_use: 'access', client_id: 'another-client' })));
    const { verifier, refusals } = setup();
    await refused(verifier.verify(await cognitoShaped()));
    assert.equal(refusals()[0]?.reason, 'missing_claim');
    assert.equal(refusals()[0]?.claim, 'aud');
    assert.equal(refusals()[0]?.clientId, 'mm-test');
  });

  it('aud as a list: one of ours is enough; none of ours is wrong_audience', async () => {
    const { verifier, refusals } = setup();
    await verifier.verify(await issuer.sign({ aud: ['other', 'mm-test'] }));
    await refused(verifier.verify(await issuer.sign({ aud: ['other', 'MM-TEST'] })));
    assert.equal(refusals()[0]?.reason, 'wrong_audience');
    assert.deepEqual(refusals()[0]?.audience, ['other', 'MM-TEST']);
  });
});

describe('the refusal log', () => {
  it('one line per reason and issuer per minute, then a count of the lines held back', async () => {
    let clock = 1_000_000;
    const { verifier, refusals } = setup({}, () => clock);
    const expired = await issuer.sign({ exp: Math.floor(Date.now() / 1000) - 600 });
    for (let i = 0; i < 5; i++) await refused(verifier.verify(expired));
    await refused(verifier.verify(await issuer.sign({ aud: 'other' })));
    assert.deepEqual(
      refusals().map((line) => [line.reason, line.suppressedSinceLastLine]),
      [
        ['expired', undefined],
        ['wrong_audience', undefined],
      ],
    );
    clock += REFUSAL_LOG_INTERVAL_MS + 1;
    await refused(verifier.verify(expired));
    assert.deepEqual(refusals()[2], {
      level: 'warn',
      event: 'auth.token_refused',
      reason: 'expired',
      issuer: issuer.issuer,
      audience: 'mm-test',
      kid: issuer.keys.RS256.kid,
      alg: 'RS256',
      typ: 'JWT',
      configuredIssuer: issuer.issuer,
      suppressedSinceLastLine: 4,
    });
  });

  it('names the missing claim, the unknown kid, the unknown issuer; never the token or its signature', async () => {
    const { verifier, refusals, raw } = setup();
    const tokens = [
      await issuer.sign({}, { expiresIn: null }),
      await issuer.sign({ sub: undefined }),
      await issuer.sign({}, { kid: 'rotated-away' }),
      await issuer.sign({ iss: 'https://evil.example' }),
      await issuer.sign({ iss: `${issuer.issuer}/` }), // the same reason within the minute: held back
    ];
    for (const token of tokens) await refused(verifier.verify(token));
    assert.deepEqual(
      refusals().map((line) => [line.reason, line.claim ?? line.kid]),
      [
        ['missing_claim', 'exp'],
        ['missing_claim', 'sub'],
        ['unknown_kid', 'rotated-away'],
        ['unknown_issuer', issuer.keys.RS256.kid],
      ],
    );
    assert.equal(refusals()[2]?.jwksUri, `${issuer.issuer}/.well-known/jwks.json`);
    assert.equal(refusals()[3]?.issuer, 'https://evil.example');
    assert.equal(refusals()[3]?.hint, undefined);
    const nearMiss = setup();
    await refused(nearMiss.verifier.verify(tokens[4]!));
    assert.match(nearMiss.refusals()[0]?.hint, /only by a trailing "\/"/);
    const logs = raw.join('\n');
    for (const token of tokens) {
      assert.ok(!logs.includes(token));
      assert.ok(!logs.includes(token.split('.')[2]!));
    }
  });

  it('a malformed ES256 signature is a 401 (bad_signature), not a crash', async () => {
    const { verifier, refusals } = setup();
    const token = await issuer.sign({}, { alg: 'ES256' });
    const [header, payload] = token.split('.');
    for (const signature of ['AAAA', Buffer.alloc(70, 0x30).toString('base64url'), Buffer.alloc(64, 0xff).toString('base64url')]) {
      await refused(verifier.verify(`${header}.${payload}.${signature}`));
    }
    assert.ok(refusals().every((line) => line.reason === 'bad_signature'), JSON.stringify(refusals()));
  });

  it('the cold start reports each issuer: ready with its JWKS source, or why not', async () => {
    const { lines } = setup({ MANAGE_JWT_ISSUERS: JSON.stringify([{ issuer: 'http://127.0.0.1:9/nothing', audience: 'x' }]) });
    await until(() => lines.some((line) => line.event === 'auth.issuer_ready') && lines.some((line) => line.event === 'auth.issuer_check_failed'));
    const ready = lines.find((line) => line.event === 'auth.issuer_ready');
    assert.equal(ready?.issuer, issuer.issuer);
    assert.equal(ready?.jwksUri, `${issuer.issuer}/.well-known/jwks.json`);
    const failed = lines.find((line) => line.event === 'auth.issuer_check_failed');
    assert.equal(failed?.level, 'warn');
    assert.equal(failed?.issuer, 'http://127.0.0.1:9/nothing');
    assert.equal(failed?.discovery, 'http://127.0.0.1:9/nothing/.well-known/openid-configuration');
    assert.match(failed?.outcome, /fetch failed|ECONNREFUSED/);
  });

  it('an issuer down at the cold start: the first request tries again and passes once it is up; then failures back off', async () => {
    let down = true;
    let discoveries = 0;
    const server = createServer((_req, res) => {
      discoveries++;
      if (down) res.writeHead(503).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: url, jwks_uri: `${issuer.issuer}/.well-known/jwks.json` }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const { verifier, lines, refusals } = setup({ MANAGE_JWT_ISSUER: url });
      await until(() => lines.some((line) => line.event === 'auth.issuer_check_failed'));
      assert.match(lines.find((line) => line.event === 'auth.issuer_check_failed')?.outcome, /answered HTTP 503/);
      down = false;
      assert.equal((await verifier.verify(await issuer.sign({ iss: url }))).issuer, url);
      assert.equal(discoveries, 2);
      assert.deepEqual(refusals(), []);

      down = true;
      const other = setup({ MANAGE_JWT_ISSUER: url });
      await until(() => other.lines.some((line) => line.event === 'auth.issuer_check_failed'));
      const before = discoveries;
      for (let i = 0; i < 5; i++) await refused(other.verifier.verify(await issuer.sign({ iss: url })));
      assert.equal(discoveries - before, 1, 'one try by the first request, then the back-off');
      assert.equal(other.refusals()[0]?.reason, 'discovery_failed');
      assert.match(other.refusals()[0]?.outcome, /HTTP 503/);
    } finally {
      server.close();
    }
  });
});

/** Waits for a condition the code under test reaches asynchronously (no fixed delay: the machine may be slow). */
async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
