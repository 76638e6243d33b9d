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
    // No JWKS URI: the server reads it from the issuer's discovery document.
    assert.deepEqual(config.oidcIssuers, [{ issuer: 'https://issuer.example', audiences: ['mm'], groupsClaims: ['groups', 'cognito:groups'], source: 'MANAGE_JWT_ISSUER' }]);
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
    assert.deepEqual(config.cognito, { userPoolId: 'eu-west-1_AbC123', clientIds: ['client1', 'client2'], tokenUse: 'id', groupsClaims: ['cognito:groups'] });
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
    assert.equal(loadConfig({ ...base, MANAGE_JWT_ISSUER: 'http://127.0.0.1:3005' }, known).oidcIssuers[0]?.issuer, 'http://127.0.0.1:3005');
    assert.equal(loadConfig({ ...base, MANAGE_JWT_JWKS_URI: 'http://[::1]:3005/jwks' }, known).oidcIssuers[0]?.jwksUri, 'http://[::1]:3005/jwks');
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

  it('an explicit JWKS URI wins over discovery; MANAGE_JWT_TOKEN_USE and MANAGE_JWT_GROUPS_CLAIM apply', () => {
    const config = loadConfig(
      { ...base, MANAGE_JWT_JWKS_URI: 'https://keys.example/jwks', MANAGE_JWT_TOKEN_USE: 'access', MANAGE_JWT_GROUPS_CLAIM: ' realm_access.roles , groups ' },
      known,
    );
    assert.deepEqual(config.oidcIssuers, [
      { issuer: 'https://issuer.example', audiences: ['mm'], jwksUri: 'https://keys.example/jwks', groupsClaims: ['realm_access.roles', 'groups'], tokenUse: 'access', source: 'MANAGE_JWT_ISSUER' },
    ]);
    rejects({ ...base, MANAGE_JWT_TOKEN_USE: 'refresh' }, 'MANAGE_JWT_TOKEN_USE', /must be "access" or "id", not "refresh"/);
    rejects({ ...base, MANAGE_JWT_GROUPS_CLAIM: ',' }, 'MANAGE_JWT_GROUPS_CLAIM', /names no claim/);
    rejects({ ...base, MANAGE_JWT_GROUPS_CLAIM: 'realm_access..roles' }, 'MANAGE_JWT_GROUPS_CLAIM', /"realm_access\.\.roles" is not a claim path/);
  });

  it('MANAGE_JWT_GROUPS_CLAIM applies to Cognito too when set', () => {
    const config = loadConfig(
      { ...base, MANAGE_COGNITO_USER_POOL_ID: 'eu-west-1_AbC123', MANAGE_COGNITO_CLIENT_ID: 'c', MANAGE_JWT_GROUPS_CLAIM: 'custom:teams' },
      known,
    );
    assert.deepEqual(config.cognito?.groupsClaims, ['custom:teams']);
  });

  describe('MANAGE_JWT_ISSUERS', () => {
    const issuers = (value: unknown) => ({ ...base, MANAGE_JWT_ISSUERS: typeof value === 'string' ? value : JSON.stringify(value) });

    it('adds issuers after MANAGE_JWT_ISSUER, each with its audience, JWKS, claims and token type', () => {
      const config = loadConfig(
        issuers([
          { issuer: 'https://tenant.auth0.com/', audience: 'https://mm.example/api', groupsClaim: 'permissions', tokenUse: 'access' },
          { issuer: 'https://login.microsoftonline.com/t/v2.0', audience: ['api://mm', 'c0ffee'], groupsClaim: ['roles', 'groups'] },
          { issuer: 'http://127.0.0.1:8080/realms/ops', audience: 'mm', jwksUri: 'http://127.0.0.1:8080/realms/ops/protocol/openid-connect/certs' },
        ]),
        known,
      );
      assert.deepEqual(
        config.oidcIssuers.map(({ issuer, audiences, jwksUri, groupsClaims, tokenUse, source }) => ({ issuer, audiences, jwksUri, groupsClaims, tokenUse, source })),
        [
          { issuer: 'https://issuer.example', audiences: ['mm'], jwksUri: undefined, groupsClaims: ['groups', 'cognito:groups'], tokenUse: undefined, source: 'MANAGE_JWT_ISSUER' },
          { issuer: 'https://tenant.auth0.com/', audiences: ['https://mm.example/api'], jwksUri: undefined, groupsClaims: ['permissions'], tokenUse: 'access', source: 'MANAGE_JWT_ISSUERS[0]' },
          { issuer: 'https://login.microsoftonline.com/t/v2.0', audiences: ['api://mm', 'c0ffee'], jwksUri: undefined, groupsClaims: ['roles', 'groups'], tokenUse: undefined, source: 'MANAGE_JWT_ISSUERS[1]' },
          {
            issuer: 'http://127.0.0.1:8080/realms/ops',
            audiences: ['mm'],
            jwksUri: 'http://127.0.0.1:8080/realms/ops/protocol/openid-connect/certs',
            groupsClaims: ['groups', 'cognito:groups'],
            tokenUse: undefined,
            source: 'MANAGE_JWT_ISSUERS[2]',
          },
        ],
      );
    });

    it('is enough on its own, and MANAGE_JWT_GROUPS_CLAIM is the default of its entries', () => {
      const { MANAGE_JWT_ISSUER: _i, MANAGE_JWT_AUDIENCE: _a, ...rest } = base;
      const config = loadConfig({ ...rest, MANAGE_JWT_GROUPS_CLAIM: 'roles', MANAGE_JWT_ISSUERS: '[{"issuer":"https://a.example","audience":"mm"}]' }, known);
      assert.deepEqual(config.oidcIssuers.map((i) => [i.issuer, i.groupsClaims]), [['https://a.example', ['roles']]]);
    });

    it('fails at cold start naming the variable and the entry', () => {
      rejects(issuers('[{"issuer":'), 'MANAGE_JWT_ISSUERS', /is not valid JSON/);
      rejects(issuers({ issuer: 'https://a.example', audience: 'mm' }), 'MANAGE_JWT_ISSUERS', /non-empty JSON array/);
      rejects(issuers([]), 'MANAGE_JWT_ISSUERS', /non-empty JSON array/);
      rejects(issuers(['https://a.example']), 'MANAGE_JWT_ISSUERS', /MANAGE_JWT_ISSUERS\[0\] must be an object/);
      rejects(issuers([{ issuer: 'https://a.example' }]), 'MANAGE_JWT_ISSUERS', /MANAGE_JWT_ISSUERS\[0\]\.audience is required/);
      rejects(issuers([{ issuer: 'https://a.example', audience: [] }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.audience is required/);
      rejects(issuers([{ issuer: 'https://a.example', audience: ['mm', 7] }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.audience is required/);
      rejects(issuers([{ audience: 'mm' }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.issuer is required/);
      rejects(issuers([{ issuer: 'https://a.example', audiences: 'mm' }]), 'MANAGE_JWT_ISSUERS', /\[0\] has an unknown key "audiences"/);
      rejects(issuers([{ issuer: 'http://login.example', audience: 'mm' }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.issuer: an http: issuer is accepted only on a loopback host, not "login\.example"/);
      rejects(issuers([{ issuer: 'https://a.example', audience: 'mm', jwksUri: 'http://10.1.1.1/keys' }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.jwksUri: an http: JWKS URI is accepted only on a loopback host/);
      rejects(issuers([{ issuer: 'ftp://a.example', audience: 'mm' }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.issuer: "ftp:\/\/a\.example" is not an http\(s\) URL/);
      rejects(issuers([{ issuer: 'https://a.example', audience: 'mm', tokenUse: 'refresh' }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.tokenUse must be "access" or "id", not "refresh"/);
      rejects(issuers([{ issuer: 'https://a.example', audience: 'mm', groupsClaim: 3 }]), 'MANAGE_JWT_ISSUERS', /\[0\]\.groupsClaim must be a claim path/);
      rejects(issuers([{ issuer: 'https://issuer.example', audience: 'x' }]), 'MANAGE_JWT_ISSUERS', /MANAGE_JWT_ISSUERS\[0\] repeats the issuer "https:\/\/issuer\.example" of MANAGE_JWT_ISSUER/);
    });
  });
});
