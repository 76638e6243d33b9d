/**
 * Issue 12: Cognito-shaped tokens from a Cognito user-pool emulator
 * (cognito-local), obtained by a password sign-in as a user would, through the
 * handler. cognito-local's issuer is not Cognito's AWS domain, so it is trusted
 * through the generic path, which is also how a Cognito access token (client_id,
 * no aud) must pass there: `tokenUse: access`, the app client id as audience.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InitiateAuthCommand } from '@aws-sdk/client-cognito-identity-provider';
import { startCognitoLocal, type CognitoLocal, type Pool } from '../cli/cognito-local.js';
import { decodeJwt } from '../support/oidc-provider.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let cognito: CognitoLocal;
let pool: Pool;

before(async () => {
  [stack, cognito] = await Promise.all([startStack({ env: { MANAGE_COMMAND_GROUPS: JSON.stringify({ echo: ['ops'] }) } }), startCognitoLocal()]);
  pool = await cognito.createPool();
  await cognito.createUser(pool, 'olivia', 'Passw0rd!long', { groups: ['ops'] });
  await cognito.createUser(pool, 'victor', 'Passw0rd!long', { groups: ['viewers'] });
});
after(async () => {
  await Promise.all([stack.close(), cognito.close()]);
});

async function signIn(username: string) {
  const answer = await cognito.admin.send(
    new InitiateAuthCommand({ AuthFlow: 'USER_PASSWORD_AUTH', ClientId: pool.clientId, AuthParameters: { USERNAME: username, PASSWORD: 'Passw0rd!long' } }),
  );
  return { access: answer.AuthenticationResult!.AccessToken!, id: answer.AuthenticationResult!.IdToken! };
}

function trusting(tokenUse: 'access' | 'id') {
  return stack.withEnv({
    MANAGE_JWT_ISSUER: undefined,
    MANAGE_JWT_AUDIENCE: undefined,
    MANAGE_JWT_ISSUERS: JSON.stringify([{ issuer: pool.issuer, audience: pool.clientId, jwksUri: pool.jwksUri, tokenUse, groupsClaim: 'cognito:groups' }]),
  });
}
const echo = (target: TestStack, token: string) => target.http({ path: '/__manage__/echo', token, body: { data: { message: 'hi' } } });
const refusals = (target: TestStack) => target.logs.map((line) => JSON.parse(line)).filter((entry) => entry.event === 'auth.token_refused');

describe('Cognito user pool tokens (cognito-local) on the generic path', { timeout: 120_000 }, () => {
  it('access tokens: client_id instead of aud; cognito:groups decide', async () => {
    const olivia = await signIn('olivia');
    const { payload } = decodeJwt(olivia.access);
    assert.equal(payload.token_use, 'access');
    assert.equal(payload.client_id, pool.clientId);
    const target = trusting('access');
    const allowed = await echo(target, olivia.access);
    assert.equal(allowed.status, 200, allowed.raw);
    const forbidden = await echo(target, (await signIn('victor')).access);
    assert.equal(forbidden.status, 403, forbidden.raw);
    assert.equal(forbidden.body.error.code, 'Forbidden');
  });

  it('an id token where access tokens are expected is refused, and the reverse; the log says which', async () => {
    const olivia = await signIn('olivia');
    const access = trusting('access');
    assert.equal((await echo(access, olivia.id)).status, 401);
    assert.deepEqual(
      refusals(access).map((line) => [line.reason, line.statedTokenType]),
      [['wrong_token_type', 'id']],
    );
    const id = trusting('id');
    assert.equal((await echo(id, olivia.id)).status, 200);
    assert.equal((await echo(id, olivia.access)).status, 401);
    assert.equal(refusals(id)[0]?.reason, 'wrong_token_type');
  });
});
