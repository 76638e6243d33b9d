/**
 * The public createManageHandler: configuration from `env` (or process.env) at
 * creation, commands given directly or as loaders, stores replaceable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, InvalidArguments, createManageHandler, defineCommand, Type } from 'serverless-middle-management';
import { MemoryAuditStore, MemoryStateStore } from 'serverless-middle-management/testing';
import { commands } from '../../example/commands/index.js';

const env = {
  MANAGE_ALLOW_LIST: 'echo,later',
  MANAGE_JWT_ISSUER: 'https://issuer.example',
  MANAGE_JWT_AUDIENCE: 'mm',
  MANAGE_AUDIT_TABLE: 'audit',
  AWS_REGION: 'us-east-1',
};
const stores = () => ({ audit: new MemoryAuditStore(), state: new MemoryStateStore(), logger: { log: () => undefined } });

describe('createManageHandler (public)', () => {
  it('fails at creation, naming the variable, when the configuration is wrong', () => {
    assert.throws(() => createManageHandler({ commands, env: { ...env, MANAGE_ALLOW_LIST: 'echo', MANAGE_JWT_ISSUER: '' } }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match((error as Error).message, /^MANAGE_JWT_ISSUER/);
      return true;
    });
    assert.throws(() => createManageHandler({ commands, env: { ...env, MANAGE_ALLOW_LIST: 'reindex' } }), /MANAGE_ALLOW_LIST/);
    assert.throws(() => createManageHandler({ commands: { bad: {} as never }, env: { ...env, MANAGE_ALLOW_LIST: '' } }), /commands\.bad/);
  });

  it('runs commands given directly and through loaders, over direct invocation', async () => {
    const later = defineCommand({ description: 'x', args: Type.Object({ n: Type.Integer() }), run: ({ n }) => n * 2 });
    const handler = createManageHandler({
      commands: { echo: commands.echo, later: async () => ({ default: later }) },
      env,
      ...stores(),
    });
    assert.deepEqual((await handler({ command: 'echo', data: { message: 'hi' } })).result, { message: 'hi' });
    assert.equal((await handler({ command: 'later', data: { n: 21 } }, { awsRequestId: 'r1', getRemainingTimeInMillis: () => 60_000 })).result, 42);
    await assert.rejects(handler({ command: 'later', data: { n: 'x' } }), (error: unknown) => error instanceof InvalidArguments);
    await assert.rejects(handler({ command: 'noop' }), { name: 'CommandNotAllowed' });
  });

  it('answers HTTP events: 401 before anything else without a token', async () => {
    const handler = createManageHandler({ commands, env: { ...env, MANAGE_ALLOW_LIST: 'echo' }, ...stores() });
    const response = await handler({
      version: '2.0',
      rawPath: '/__manage__/echo',
      headers: { 'content-type': 'application/json' },
      requestContext: { http: { method: 'POST', path: '/__manage__/echo' }, requestId: 'r' },
      body: '{"data":{"message":"hi"}}',
      isBase64Encoded: false,
    });
    assert.equal(response.statusCode, 401);
    assert.equal(JSON.parse(response.body).error.code, 'Unauthorized');
  });

  it('reads process.env when given neither config nor env', () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, env, { MANAGE_ALLOW_LIST: 'echo' });
      assert.equal(typeof createManageHandler({ commands, ...stores() }), 'function');
      process.env.MANAGE_ALLOW_LIST = 'nope';
      assert.throws(() => createManageHandler({ commands }), /MANAGE_ALLOW_LIST/);
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });
});
