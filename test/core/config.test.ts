import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, configDefaults } from '../../src/config.js';

const known = ['noop', 'echo', 'sleep', 'fail'];
const base = {
  MANAGE_ALLOW_LIST: 'noop,echo',
  MANAGE_JWT_ISSUER: 'https://issuer.example',
  MANAGE_JWT_AUDIENCE: 'mm',
  MANAGE_AUDIT_TABLE: 'audit',
};

function rejects(env: Record<string, string>, variable: string, message: RegExp) {
  assert.throws(
    () => loadConfig(env, known),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.variable, variable);
      assert.match(error.message, new RegExp(`^${variable}: `));
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('loadConfig', () => {
  it('parses a minimal OIDC configuration with the documented defaults', () => {
    const config = loadConfig(base, known);
    assert.deepEqual([...config.allowList], ['noop', 'echo']);
    assert.deepEqual(config.oidc, { issuer: 'https://issuer.example', audiences: ['mm'], jwksUri: 'https://issuer.example/.well-known/jwks.json' });
    assert.equal(config.cognito, undefined);
    assert.equal(config.maxBodyBytes, configDefaults.maxBodyBytes);
    assert.equal(config.httpTimeLimitMs, 28000);
    assert.equal(config.idempotencyTtlSeconds, 86400);
  });

  it('parses Cognito and OIDC together, groups, approval and exclusivity', () => {
    const config = loadConfig(
      {
        ...base,
        MANAGE_COGNITO_USER_POOL_ID: 'eu-west-1_AbC123',
        MANAGE_COGNITO_CLIENT_ID: 'client1, client2',
        MANAGE_COGNITO_TOKEN_USE: 'id',
        MANAGE_COMMAND_GROUPS: '{"sleep":["ops","sre"]}',
        MANAGE_AUDITOR_GROUPS: 'audit, security',
        MANAGE_EXCLUSIVE: 'sleep',
        MANAGE_APPROVAL: '{"fail":["leads"]}',
        MANAGE_MAX_BODY_BYTES: '1024',
      },
      known,
    );
    assert.deepEqual(config.cognito, { userPoolId: 'eu-west-1_AbC123', clientIds: ['client1', 'client2'], tokenUse: 'id' });
    assert.deepEqual(config.commandGroups.get('sleep'), ['ops', 'sre']);
    assert.deepEqual(config.auditorGroups, ['audit', 'security']);
    assert.ok(config.exclusive.has('sleep'));
    assert.deepEqual(config.approval.get('fail'), ['leads']);
    assert.equal(config.maxBodyBytes, 1024);
  });

  it('an allowlist naming something that is not a command fails, naming the variable', () => {
    rejects({ ...base, MANAGE_ALLOW_LIST: 'echo,drop-database' }, 'MANAGE_ALLOW_LIST', /drop-database/);
  });

  it('no issuer at all fails', () => {
    const { MANAGE_JWT_ISSUER: _i, MANAGE_JWT_AUDIENCE: _a, ...rest } = base;
    rejects(rest, 'MANAGE_JWT_ISSUER', /no token issuer/);
  });

  it('an OIDC issuer without an audience fails: no audience, no start', () => {
    rejects({ ...base, MANAGE_JWT_AUDIENCE: '' }, 'MANAGE_JWT_AUDIENCE', /required/);
  });

  it('an http JWKS is accepted on loopback only', () => {
    assert.equal(loadConfig({ ...base, MANAGE_JWT_ISSUER: 'http://127.0.0.1:3005' }, known).oidc?.jwksUri, 'http://127.0.0.1:3005/.well-known/jwks.json');
    assert.ok(loadConfig({ ...base, MANAGE_JWT_ISSUER: 'http://localhost:3005' }, known));
    rejects({ ...base, MANAGE_JWT_ISSUER: 'http://issuer.example' }, 'MANAGE_JWT_ISSUER', /loopback/);
    rejects({ ...base, MANAGE_JWT_JWKS_URI: 'http://10.0.0.1/jwks.json' }, 'MANAGE_JWT_JWKS_URI', /loopback/);
  });

  it('malformed JSON in a variable fails, naming it', () => {
    rejects({ ...base, MANAGE_COMMAND_GROUPS: '{sleep:ops}' }, 'MANAGE_COMMAND_GROUPS', /not valid JSON/);
    rejects({ ...base, MANAGE_APPROVAL: '["x"]' }, 'MANAGE_APPROVAL', /JSON object/);
    rejects({ ...base, MANAGE_COMMAND_GROUPS: '{"sleep":"ops"}' }, 'MANAGE_COMMAND_GROUPS', /array/);
    rejects({ ...base, MANAGE_COMMAND_GROUPS: '{"nope":["ops"]}' }, 'MANAGE_COMMAND_GROUPS', /not a command/);
  });

  it('numbers out of range, a missing table, a bad pool id or token use fail', () => {
    rejects({ ...base, MANAGE_MAX_BODY_BYTES: '12kb' }, 'MANAGE_MAX_BODY_BYTES', /whole number/);
    rejects({ ...base, MANAGE_HTTP_TIME_LIMIT_MS: '0' }, 'MANAGE_HTTP_TIME_LIMIT_MS', /whole number/);
    rejects({ ...base, MANAGE_AUDIT_TABLE: ' ' }, 'MANAGE_AUDIT_TABLE', /required/);
    rejects({ ...base, MANAGE_COGNITO_USER_POOL_ID: 'pool' }, 'MANAGE_COGNITO_USER_POOL_ID', /not a user pool id/);
    rejects({ ...base, MANAGE_COGNITO_USER_POOL_ID: 'us-east-1_abc' }, 'MANAGE_COGNITO_CLIENT_ID', /required/);
    rejects(
      { ...base, MANAGE_COGNITO_USER_POOL_ID: 'us-east-1_abc', MANAGE_COGNITO_CLIENT_ID: 'c', MANAGE_COGNITO_TOKEN_USE: 'refresh' },
      'MANAGE_COGNITO_TOKEN_USE',
      /access/,
    );
    rejects({ ...base, MANAGE_EXCLUSIVE: 'ghost' }, 'MANAGE_EXCLUSIVE', /ghost/);
  });
});
