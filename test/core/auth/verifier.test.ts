/**
 * Token verification with keys generated at test time. Cognito's JWKS is
 * served by a fake fetcher: no test reaches the network.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, generateKeyPair } from 'jose';
import type { Fetcher } from 'aws-jwt-verify/https';
import { loadConfig } from '../../../src/config.js';
import { createTokenVerifier } from '../../../src/auth/verifier.js';
import { Unauthorized, UNAUTHORIZED_MESSAGE } from '../../../src/errors.js';
import { startTestIssuer, type TestIssuer } from '../../support/issuer.js';

const POOL = 'us-east-1_TestPool';
const COGNITO_ISSUER = `https://cognito-idp.us-east-1.amazonaws.com/${POOL}`;
const known = ['echo'];

let oidc: TestIssuer;
let cognitoKeys: TestIssuer; // reused only for its keys; tokens carry Cognito's issuer
const fetched: string[] = [];
const fetcher: Fetcher = {
  async fetch(uri) {
    fetched.push(uri);
    const jwks = {
      [`${COGNITO_ISSUER}/.well-known/jwks.json`]: cognitoKeys.jwks,
      [`${oidc.issuer}/.well-known/jwks.json`]: oidc.jwks,
      [`${oidc.issuer}/.well-known/openid-configuration`]: { issuer: oidc.issuer, jwks_uri: `${oidc.issuer}/.well-known/jwks.json` },
    }[uri];
    if (jwks) return new TextEncoder().encode(JSON.stringify(jwks)).buffer as ArrayBuffer;
    throw new Error(`network disabled in tests: ${uri}`);
  },
};

before(async () => {
  [oidc, cognitoKeys] = await Promise.all([startTestIssuer('mm-test'), startTestIssuer('unused')]);
});
after(async () => {
  await Promise.all([oidc.close(), cognitoKeys.close()]);
});

const quiet = { log() {} };
function verifierFor(env: Record<string, string>) {
  return createTokenVerifier(loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_AUDIT_TABLE: 't', ...env }, known), { fetcher, logger: quiet });
}
const cognitoEnv = { MANAGE_COGNITO_USER_POOL_ID: POOL, MANAGE_COGNITO_CLIENT_ID: 'app-client' };
const cognitoAccess = (claims: Record<string, unknown> = {}, alg: 'RS256' | 'ES256' = 'RS256') =>
  cognitoKeys.sign({ iss: COGNITO_ISSUER, aud: undefined, token_use: 'access', client_id: 'app-client', sub: 'u-1', 'cognito:groups': ['ops'], username: 'ann', ...claims }, { alg });

async function refused(promise: Promise<unknown>) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Unauthorized);
    assert.equal(error.message, UNAUTHORIZED_MESSAGE);
    return true;
  });
}

describe('Cognito user pool tokens', () => {
  it('accepts an access token of the configured client and reads its groups', async () => {
    const verifier = verifierFor(cognitoEnv);
    for (const alg of ['RS256', 'ES256'] as const) {
      const actor = await verifier.verify(await cognitoAccess({}, alg));
      assert.deepEqual(actor, { kind: 'token', issuer: COGNITO_ISSUER, subject: 'u-1', username: 'ann', groups: ['ops'], scopes: [] });
    }
    assert.deepEqual(new Set(fetched), new Set([`${COGNITO_ISSUER}/.well-known/jwks.json`]));
  });

  it('refuses an id token where access tokens are expected, and the reverse', async () => {
    await refused(verifierFor(cognitoEnv).verify(await cognitoAccess({ token_use: 'id', aud: 'app-client' })));
    const idVerifier = verifierFor({ ...cognitoEnv, MANAGE_COGNITO_TOKEN_USE: 'id' });
    await refused(idVerifier.verify(await cognitoAccess()));
    const idToken = await cognitoAccess({ token_use: 'id', aud: 'app-client', client_id: undefined, 'cognito:username': 'ann' });
    assert.equal((await idVerifier.verify(idToken)).username, 'ann');
  });

  it('refuses another app client, another pool, and a token without exp', async () => {
    const verifier = verifierFor(cognitoEnv);
    await refused(verifier.verify(await cognitoAccess({ client_id: 'other-client' })));
    await refused(verifier.verify(await cognitoAccess({ iss: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other' })));
    await refused(
      verifier.verify(await cognitoKeys.sign({ iss: COGNITO_ISSUER, token_use: 'access', client_id: 'app-client', sub: 'u' }, { expiresIn: null })),
    );
  });

  it('MANAGE_JWT_GROUPS_CLAIM names the Cognito groups claim too; a string is one group', async () => {
    const verifier = verifierFor({ ...cognitoEnv, MANAGE_JWT_GROUPS_CLAIM: 'custom:teams,cognito:groups' });
    const actor = await verifier.verify(await cognitoAccess({ 'custom:teams': 'night shift', 'cognito:groups': ['ops'] }));
    assert.deepEqual(actor.groups, ['night shift', 'ops']);
  });

  it('accepts both issuers when both are configured', async () => {
    const verifier = verifierFor({ ...cognitoEnv, MANAGE_JWT_ISSUER: oidc.issuer, MANAGE_JWT_AUDIENCE: 'mm-test' });
    assert.equal((await verifier.verify(await cognitoAccess())).issuer, COGNITO_ISSUER);
    assert.equal((await verifier.verify(await oidc.sign({ sub: 'bob' }))).subject, 'bob');
  });
});

describe('OIDC tokens', () => {
  const oidcVerifier = () => verifierFor({ MANAGE_JWT_ISSUER: oidc.issuer, MANAGE_JWT_AUDIENCE: 'mm-test' });

  it('fetches the JWKS of a loopback issuer over http, once', async () => {
    const verifier = createTokenVerifier(
      loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_AUDIT_TABLE: 't', MANAGE_JWT_ISSUER: oidc.issuer, MANAGE_JWT_AUDIENCE: 'mm-test' }, known),
      { logger: quiet },
    );
    const before = oidc.fetchCount();
    for (let i = 0; i < 3; i++) {
      const actor = await verifier.verify(await oidc.sign({ groups: ['ops', 'sre'], scope: 'manage:run' }, { alg: i % 2 ? 'ES256' : 'RS256' }));
      assert.deepEqual(actor.groups, ['ops', 'sre']);
      assert.deepEqual(actor.scopes, ['manage:run']);
    }
    assert.equal(oidc.fetchCount() - before, 1);
  });

  it('refuses HS256 signed with the public key as the secret', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(oidc.keys.RS256.publicJwk));
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: oidc.issuer, aud: 'mm-test', sub: 'mallory', exp: now + 60 })
      .setProtectedHeader({ alg: 'HS256', kid: oidc.keys.RS256.kid })
      .sign(secret);
    await refused(oidcVerifier().verify(token));
  });

  it('refuses a token signed by another key that claims a known kid', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    await refused(oidcVerifier().verify(await oidc.sign({}, { privateKey: privateKey as never })));
  });

  it('refuses a token without a subject, and a 64 KB token before parsing it', async () => {
    await refused(oidcVerifier().verify(await oidc.sign({ sub: undefined })));
    await refused(oidcVerifier().verify('a'.repeat(64 * 1024)));
  });

  it('unknown kids do not cause a JWKS fetch storm', async () => {
    const verifier = createTokenVerifier(
      loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_AUDIT_TABLE: 't', MANAGE_JWT_ISSUER: oidc.issuer, MANAGE_JWT_AUDIENCE: 'mm-test' }, known),
      { logger: quiet },
    );
    await verifier.verify(await oidc.sign());
    const before = oidc.fetchCount();
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => refused(verifier.verify(await oidc.sign({}, { kid: `unknown-${i}` })))),
    );
    assert.ok(oidc.fetchCount() - before <= 1, `fetched ${oidc.fetchCount() - before} times`);
  });
});
