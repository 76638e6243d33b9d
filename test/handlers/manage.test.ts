/**
 * The `manage` handler through its public entry point: real tokens, a real
 * dynalite, every row of CONTRACT §2's error table and §3's error names.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { Type } from '@sinclair/typebox';
import { defineCommand } from '../../src/command.js';
import { UNAUTHORIZED_MESSAGE } from '../../src/errors.js';
import type { AuditStore } from '../../src/stores/audit/store.js';
import { startStack, type TestStack } from '../support/stack.js';

/** Side effects the tests can count: a command that ran is a command that touched. */
const touches: string[] = [];
const touch = async () => ({
  default: defineCommand({
    description: 'Records that it ran (test only).',
    args: Type.Object({ label: Type.Optional(Type.String()) }),
    run: ({ label }) => {
      touches.push(label ?? 'touched');
      return { touched: true };
    },
    plan: ({ label }) => ({ wouldTouch: label ?? 'touched' }),
  }),
});

let stack: TestStack;
let token: string;

before(async () => {
  stack = await startStack({ commands: { touch } });
  token = await stack.token({ username: 'alice' });
});
after(() => stack.close());

const run = (command: string, body: unknown = {}, extra: Partial<Parameters<TestStack['http']>[0]> = {}) =>
  stack.http({ method: 'POST', path: `/__manage__/${command}`, token, body, ...extra });

async function scanAudit(s: TestStack = stack): Promise<string> {
  const { Items = [] } = await s.dynamo.client.send(new ScanCommand({ TableName: s.dynamo.tableName }));
  return JSON.stringify(Items);
}

describe('running the shipped commands over HTTP', () => {
  it('echo returns the message repeated, one output line, and timings', async () => {
    const response = await run('echo', { data: { message: 'hello', repeat: 2 } });
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
    const body = response.body;
    assert.equal(body.command, 'echo');
    assert.equal(body.status, 'succeeded');
    assert.deepEqual(body.result, { message: 'hello hello' });
    assert.equal(body.output.length, 1);
    assert.match(body.executionId, /^[0-9A-Z]{26}$/);
    assert.ok(Date.parse(body.finishedAt) >= Date.parse(body.startedAt));
    assert.equal(typeof body.durationMs, 'number');
    assert.equal(body.auditRecorded, undefined);
  });

  it('noop returns null, with no body at all', async () => {
    const response = await stack.http({ method: 'POST', path: '/__manage__/noop', token });
    assert.equal(response.status, 200);
    assert.equal(response.body.result, null);
  });

  it('sleep waits and reports how long', async () => {
    const response = await run('sleep', { data: { ms: 20 } });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.result, { sleptMs: 20 });
    assert.ok(response.body.durationMs >= 19);
  });

  it('fail is a 500 CommandFailed with the message and the execution id, no stack', async () => {
    const response = await run('fail', { data: { message: 'disk is full' } });
    assert.equal(response.status, 500);
    assert.equal(response.body.error.code, 'CommandFailed');
    assert.equal(response.body.error.message, 'disk is full');
    assert.match(response.body.error.executionId, /^[0-9A-Z]{26}$/);
    assert.doesNotMatch(response.raw, /at .*\.ts:\d+/);
  });

  it('a REST API (v1) event works too', async () => {
    const response: any = await stack.handler(
      {
        httpMethod: 'POST',
        path: '/__manage__/echo',
        resource: '/__manage__/{proxy+}',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        multiValueHeaders: { Authorization: [`Bearer ${token}`] },
        body: Buffer.from(JSON.stringify({ data: { message: 'v1' } })).toString('base64'),
        isBase64Encoded: true,
        requestContext: { requestId: 'r1', identity: { sourceIp: '198.51.100.1' } },
      } as any,
      { getRemainingTimeInMillis: () => 60_000 } as any,
    );
    assert.equal(response.statusCode, 200);
    assert.deepEqual(JSON.parse(response.body).result, { message: 'v1' });
  });
});

describe('the audit trail', () => {
  it('records the attempt and the outcome of a success, with actor and source', async () => {
    const { body } = await run('echo', { data: { message: 'audited' } });
    const record = await stack.audit.getExecution(body.executionId);
    assert.ok(record);
    assert.equal(record.status, 'succeeded');
    assert.equal(record.command, 'echo');
    assert.deepEqual(record.args, { message: 'audited', repeat: 1 });
    assert.deepEqual(record.actor, { kind: 'token', issuer: stack.issuer.issuer, subject: 'alice', username: 'alice', groups: [], scopes: [] });
    assert.equal(record.source.channel, 'http');
    assert.equal(record.source.ip, '203.0.113.7');
    assert.equal(record.source.userAgent, 'node-test');
    assert.deepEqual(record.result, { message: 'audited' });
    assert.equal(record.output?.length, 1);
    assert.equal(record.outcomeRecorded, true);
  });

  it('records a failure with its error message', async () => {
    const { body } = await run('fail', { data: { message: 'boom' } });
    const record = await stack.audit.getExecution(body.error.executionId);
    assert.equal(record?.status, 'failed');
    assert.deepEqual(record?.error, { code: 'CommandFailed', message: 'boom' });
  });

  it('records a timeout, and the HTTP caller gets 504 with the execution id', async () => {
    const short = stack.withEnv({ MANAGE_HTTP_TIME_LIMIT_MS: '150' });
    const response = await short.http({ path: '/__manage__/sleep', token, body: { data: { ms: 5000 } } });
    assert.equal(response.status, 504);
    assert.equal(response.body.error.code, 'CommandTimedOut');
    const record = await stack.audit.getExecution(response.body.error.executionId);
    assert.equal(record?.status, 'timed_out');
    assert.equal(record?.timeLimitMs, 150);
    assert.ok((record?.durationMs ?? 0) < 2000);
  });

  it('a run is capped by the Lambda time left, minus a margin for the outcome', async () => {
    const response = await run('sleep', { data: { ms: 5000 } }, { remainingMs: 1800 });
    assert.equal(response.status, 504);
  });

  it('keeps sensitive arguments out of the audit, the response and the logs', async () => {
    const secret = 'hunter2-correct-horse';
    const response = await run('echo', { data: { message: 'public', secret } });
    assert.equal(response.status, 200);
    assert.ok(!response.raw.includes(secret));
    const record = await stack.audit.getExecution(response.body.executionId);
    assert.equal(record?.args.secret, '[REDACTED]');
    assert.ok(!(await scanAudit()).includes(secret));
    assert.ok(!stack.logs.join('\n').includes(secret));
    assert.ok(!stack.logs.join('\n').includes(token), 'no bearer token in the logs');
  });

  it('scrubs a sensitive value a command echoes back by mistake', async () => {
    const secret = 'leaky-secret-value';
    const response = await run('echo', { data: { message: `the secret is ${secret}`, secret } });
    assert.equal(response.status, 200);
    assert.equal(response.body.result.message, 'the secret is [REDACTED]');
    assert.ok(!(await scanAudit()).includes(secret));
  });

  it('when the attempt cannot be written the command does not run: 503', async () => {
    const isolated = await startStack({ commands: { touch } });
    const before = touches.length;
    await isolated.dynamo.stop();
    const t = await isolated.token();
    const started = Date.now();
    const response = await isolated.http({ path: '/__manage__/touch', token: t, body: { data: { label: 'must-not-run' } } });
    assert.equal(response.status, 503);
    assert.equal(response.body.error.code, 'AuditUnavailable');
    assert.equal(touches.length, before);
    assert.ok(!touches.includes('must-not-run'));
    assert.ok(Date.now() - started < 5000, 'fails closed fast');
    await assert.rejects(isolated.invoke({ command: 'touch' }), { name: 'AuditUnavailable' });
    assert.equal(touches.length, before);
    await isolated.close();
  });

  it('when the outcome cannot be written the response says so and the attempt stays', async () => {
    const failingOutcome: AuditStore = {
      append: async (entry) => {
        if (entry.kind === 'outcome') throw new Error('throttled');
        return stack.audit.append(entry);
      },
      getExecution: (id) => stack.audit.getExecution(id),
      listExecutions: (q) => stack.audit.listExecutions(q),
      readChain: (command) => stack.audit.readChain(command),
    };
    const flaky = stack.withEnv({}, { audit: failingOutcome });
    const response = await flaky.http({ path: '/__manage__/echo', token, body: { data: { message: 'x' } } });
    assert.equal(response.status, 200);
    assert.equal(response.body.auditRecorded, false);
    const record = await stack.audit.getExecution(response.body.executionId);
    assert.equal(record?.outcomeRecorded, false);
    assert.equal(record?.status, 'running');
  });
});

describe('the error table of CONTRACT §2', () => {
  it('400 InvalidRequest: body not JSON, not an object, unknown key, data or dryRun of the wrong type', async () => {
    for (const body of ['{nope', '[1,2]', 'null', '"text"', { data: {}, extra: 1 }, { data: [1] }, { data: 'x' }, { dryRun: 'yes' }]) {
      const response = await run('echo', body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(response.body.error.code, 'InvalidRequest');
    }
  });

  it('400 InvalidRequest for a body that is not UTF-8', async () => {
    const response: any = await stack.handler(
      {
        version: '2.0',
        rawPath: '/__manage__/echo',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64'),
        isBase64Encoded: true,
        requestContext: { http: { method: 'POST' } },
      } as any,
      {} as any,
    );
    assert.equal(response.statusCode, 400);
    assert.equal(JSON.parse(response.body).error.code, 'InvalidRequest');
  });

  it('400 InvalidArguments lists every bad field', async () => {
    const response = await run('echo', { data: { repeat: 11, extra: true } });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'InvalidArguments');
    const paths = response.body.error.issues.map((issue: { path: string }) => issue.path).sort();
    assert.deepEqual(paths, ['/extra', '/message', '/repeat']);
    for (const issue of response.body.error.issues) assert.equal(typeof issue.message, 'string');
  });

  it('401 for every bad token, with WWW-Authenticate and one message', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: Record<string, Record<string, string>> = {
      'no header': {},
      'not bearer': { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      'empty bearer': { authorization: 'Bearer ' },
      malformed: { authorization: 'Bearer not.a.jwt!' },
      expired: { authorization: `Bearer ${await stack.issuer.sign({ exp: now - 60 })}` },
      'no exp': { authorization: `Bearer ${await stack.issuer.sign({}, { expiresIn: null })}` },
      'wrong audience': { authorization: `Bearer ${await stack.issuer.sign({ aud: 'someone-else' })}` },
      'wrong issuer': { authorization: `Bearer ${await stack.issuer.sign({ iss: 'https://evil.example' })}` },
      'future nbf': { authorization: `Bearer ${await stack.issuer.sign({ nbf: now + 600 })}` },
      'alg none': {
        authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: stack.issuer.issuer, aud: 'mm-test', sub: 'x', exp: now + 60 })).toString('base64url')}.`,
      },
      'bit-flipped ES256 signature': { authorization: `Bearer ${flip(await stack.issuer.sign({}, { alg: 'ES256' }))}` },
      'bit-flipped RS256 signature': { authorization: `Bearer ${flip(await stack.issuer.sign({}, { alg: 'RS256' }))}` },
      'truncated ES256 signature': { authorization: `Bearer ${(await stack.issuer.sign({}, { alg: 'ES256' })).slice(0, -10)}` },
      'two tokens': { authorization: `Bearer ${token}, Bearer ${token}` },
    };
    for (const [name, headers] of Object.entries(cases)) {
      const response = await stack.http({ path: '/__manage__/echo', headers, body: { data: { message: 'x' } } });
      assert.equal(response.status, 401, name);
      assert.equal(response.headers['www-authenticate'], 'Bearer', name);
      assert.deepEqual(response.body, { error: { code: 'Unauthorized', message: UNAUTHORIZED_MESSAGE } }, name);
    }
  });

  it('401 comes before the body and the command are looked at', async () => {
    for (const [path, body] of [
      ['/__manage__/echo', '{not json'],
      ['/__manage__/no-such-command', {}],
      ['/__manage__/echo', 'x'.repeat(100_000)],
    ] as const) {
      const response = await stack.http({ path, body, headers: { 'content-type': 'text/plain' } });
      assert.equal(response.status, 401, path);
    }
    const response = await stack.http({ method: 'GET', path: '/__manage__' });
    assert.equal(response.status, 401);
  });

  it('403 CommandNotAllowed alike for a known command not allowed and for no command at all', async () => {
    const restricted = stack.withEnv({ MANAGE_ALLOW_LIST: 'echo' });
    const before = touches.length;
    const notAllowed = await restricted.http({ path: '/__manage__/touch', token, body: {} });
    const notACommand = await restricted.http({ path: '/__manage__/rm-rf', token, body: {} });
    const weird = await restricted.http({ path: '/__manage__/__proto__', token, body: {} });
    for (const response of [notAllowed, notACommand, weird]) {
      assert.equal(response.status, 403);
      assert.equal(response.body.error.code, 'CommandNotAllowed');
      assert.match(response.body.error.message, /^Command ".*" is not allowed\.$/);
    }
    assert.equal(touches.length, before);
  });

  it('403 Forbidden when the caller lacks a group the command requires', async () => {
    const guarded = stack.withEnv({ MANAGE_COMMAND_GROUPS: '{"sleep":["ops"]}' });
    const without = await guarded.http({ path: '/__manage__/sleep', token, body: { data: { ms: 1 } } });
    assert.equal(without.status, 403);
    assert.equal(without.body.error.code, 'Forbidden');
    const opsToken = await stack.token({ groups: ['ops'] });
    const withGroup = await guarded.http({ path: '/__manage__/sleep', token: opsToken, body: { data: { ms: 1 } } });
    assert.equal(withGroup.status, 200);
    const cognitoGroups = await stack.token({ 'cognito:groups': ['ops'] });
    assert.equal((await guarded.http({ path: '/__manage__/sleep', token: cognitoGroups, body: { data: { ms: 1 } } })).status, 200);
  });

  it('404 NotFound for an unknown route or execution', async () => {
    assert.equal((await stack.http({ method: 'GET', path: '/elsewhere', token })).status, 404);
    assert.equal((await stack.http({ method: 'POST', path: '/__manage__/echo/extra', token })).status, 404);
    const missing = await stack.http({ method: 'GET', path: '/__manage__/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV', token });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'NotFound');
    // Unknown routes are 404 even without a token: nothing else is revealed.
    assert.equal((await stack.http({ method: 'GET', path: '/elsewhere' })).status, 404);
  });

  it('405 MethodNotAllowed with Allow: POST for any other method on a command', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const response = await stack.http({ method, path: '/__manage__/echo', token });
      assert.equal(response.status, 405, method);
      assert.equal(response.body.error.code, 'MethodNotAllowed');
      assert.equal(response.headers.allow, 'POST');
    }
  });

  it('413 PayloadTooLarge over MANAGE_MAX_BODY_BYTES', async () => {
    const small = stack.withEnv({ MANAGE_MAX_BODY_BYTES: '100' });
    const response = await small.http({ path: '/__manage__/echo', token, body: { data: { message: 'x'.repeat(200) } } });
    assert.equal(response.status, 413);
    assert.equal(response.body.error.code, 'PayloadTooLarge');
    const response2 = await run('echo', { data: { message: 'x'.repeat(70_000) } });
    assert.equal(response2.status, 413);
  });

  it('415 UnsupportedMediaType for a non-JSON content type, even if the body parses', async () => {
    const response = await run('echo', JSON.stringify({ data: { message: 'x' } }), { headers: { 'content-type': 'text/plain' } });
    assert.equal(response.status, 415);
    assert.equal(response.body.error.code, 'UnsupportedMediaType');
    const form = await run('echo', 'data=1', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 415);
  });
});

describe('dry runs', () => {
  it('returns the plan, audits it as planned, and never runs the command', async () => {
    const before = touches.length;
    const response = await run('touch', { data: { label: 'dry' }, dryRun: true });
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'planned');
    assert.deepEqual(response.body.result, { wouldTouch: 'dry' });
    assert.equal(touches.length, before);
    const record = await stack.audit.getExecution(response.body.executionId);
    assert.equal(record?.status, 'planned');
    assert.equal(record?.dryRun, true);
  });

  it('a command without a plan answers 400 InvalidRequest', async () => {
    const response = await run('fail', { dryRun: true });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'InvalidRequest');
    assert.match(response.body.error.message, /no dry run/);
  });
});

describe('read endpoints', () => {
  it('GET /__manage__ lists the commands this caller may run, with their schema', async () => {
    const guarded = stack.withEnv({ MANAGE_COMMAND_GROUPS: '{"sleep":["ops"]}' });
    const response = await guarded.http({ method: 'GET', path: '/__manage__', token });
    assert.equal(response.status, 200);
    const names = response.body.commands.map((c: { name: string }) => c.name);
    assert.deepEqual(names, ['echo', 'fail', 'noop', 'touch']);
    const echo = response.body.commands.find((c: { name: string }) => c.name === 'echo');
    assert.equal(echo.schema.type, 'object');
    assert.deepEqual(echo.schema.required, ['message']);
    assert.equal(echo.schema.additionalProperties, false);
    assert.equal(typeof echo.description, 'string');
  });

  it('an execution is readable by its actor and by auditors, and unknown to anyone else', async () => {
    const { body } = await run('echo', { data: { message: 'mine' } });
    const path = `/__manage__/executions/${body.executionId}`;
    const own = await stack.http({ method: 'GET', path, token });
    assert.equal(own.status, 200);
    assert.equal(own.body.executionId, body.executionId);
    assert.equal(own.body.status, 'succeeded');
    assert.deepEqual(own.body.args, { message: 'mine', repeat: 1 });

    const bob = await stack.token({ sub: 'bob' });
    assert.equal((await stack.http({ method: 'GET', path, token: bob })).status, 404);

    const auditors = stack.withEnv({ MANAGE_AUDITOR_GROUPS: 'audit' });
    const auditor = await stack.token({ sub: 'carol', groups: ['audit'] });
    assert.equal((await auditors.http({ method: 'GET', path, token: auditor })).status, 200);
  });

  it('lists executions newest first, paginated, filtered by command; own only unless auditor', async () => {
    const dave = await stack.token({ sub: 'dave' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { body } = await stack.http({ path: '/__manage__/echo', token: dave, body: { data: { message: `m${i}` } } });
      ids.push(body.executionId);
    }
    await stack.http({ path: '/__manage__/noop', token: dave });
    const page1 = await stack.http({ method: 'GET', path: '/__manage__/executions', token: dave, query: { command: 'echo', limit: '3' } });
    assert.equal(page1.status, 200);
    assert.deepEqual(page1.body.executions.map((e: { executionId: string }) => e.executionId), ids.slice(2).reverse());
    assert.ok(page1.body.cursor);
    const page2 = await stack.http({
      method: 'GET',
      path: '/__manage__/executions',
      token: dave,
      query: { command: 'echo', limit: '3', cursor: page1.body.cursor },
    });
    assert.deepEqual(page2.body.executions.map((e: { executionId: string }) => e.executionId), ids.slice(0, 2).reverse());

    const all = await stack.http({ method: 'GET', path: '/__manage__/executions', token: dave, query: { limit: '100' } });
    assert.equal(all.body.executions.length, 6);
    assert.ok(all.body.executions.every((e: { actor: { subject: string } }) => e.actor.subject === 'dave'));

    const auditors = stack.withEnv({ MANAGE_AUDITOR_GROUPS: 'audit' });
    const auditor = await stack.token({ sub: 'erin', groups: ['audit'] });
    const everything = await auditors.http({ method: 'GET', path: '/__manage__/executions', token: auditor, query: { limit: '100' } });
    assert.ok(everything.body.executions.some((e: { actor: { subject: string } }) => e.actor.subject === 'alice'));
  });

  it('rejects a bad limit or a forged cursor with 400', async () => {
    const badLimit = await stack.http({ method: 'GET', path: '/__manage__/executions', token, query: { limit: '0' } });
    assert.equal(badLimit.status, 400);
    const actor = `token ${stack.issuer.issuer} alice`;
    for (const key of [
      { pk: 'EXEC#x', sk: 'ATTEMPT', listSk: 'x', actorKey: 'token other bob' },
      // Our own partition, but not a key DynamoDB would accept: still the caller's mistake, not a 503.
      { actorKey: actor },
      { actorKey: actor, listSk: 'x' },
    ]) {
      const forged = Buffer.from(JSON.stringify(key)).toString('base64url');
      const response = await stack.http({ method: 'GET', path: '/__manage__/executions', token, query: { cursor: forged } });
      assert.equal(response.status, 400, JSON.stringify(key));
      assert.equal(response.body.error.code, 'InvalidRequest');
    }
  });
});

describe('direct invocation (CONTRACT §3)', () => {
  it('returns the same object as the HTTP 200 body and records the given actor', async () => {
    const result = await stack.invoke({ command: 'echo', data: { message: 'from sfn' }, actor: 'arn:aws:states:execution:demo' });
    assert.equal(result.status, 'succeeded');
    assert.deepEqual(result.result, { message: 'from sfn' });
    const record = await stack.audit.getExecution(result.executionId);
    assert.deepEqual(record?.actor, { kind: 'invoke', name: 'arn:aws:states:execution:demo' });
    assert.equal(record?.source.channel, 'invoke');
  });

  it('group rules do not apply: the invoker is trusted as far as the allowlist allows', async () => {
    const guarded = stack.withEnv({ MANAGE_COMMAND_GROUPS: '{"sleep":["ops"]}' });
    const result = await guarded.invoke({ command: 'sleep', data: { ms: 1 } });
    assert.equal(result.status, 'succeeded');
  });

  const cases: [string, unknown, string][] = [
    ['not an object', 'echo', 'InvalidRequest'],
    ['no command', { data: {} }, 'InvalidRequest'],
    ['unknown key', { command: 'echo', data: { message: 'x' }, extra: 1 }, 'InvalidRequest'],
    ['not allowed', { command: 'rm-rf' }, 'CommandNotAllowed'],
    ['bad arguments', { command: 'echo', data: { repeat: 0 } }, 'InvalidArguments'],
    ['command throws', { command: 'fail', data: { message: 'nope' } }, 'CommandFailed'],
  ];
  for (const [name, event, errorName] of cases) {
    it(`throws ${errorName} when ${name}`, async () => {
      await assert.rejects(stack.invoke(event), (error: Error) => {
        assert.equal(error.name, errorName);
        assert.ok(!error.stack?.includes('.ts:'), 'no stack trace');
        return true;
      });
    });
  }

  it('throws CommandTimedOut past the Lambda time left, with the execution id', async () => {
    await assert.rejects(stack.invoke({ command: 'sleep', data: { ms: 10_000 } }, 1700), (error: Error & { executionId?: string }) => {
      assert.equal(error.name, 'CommandTimedOut');
      assert.match(error.executionId ?? '', /^[0-9A-Z]{26}$/);
      // Lambda hands the stack to Step Functions as the Cause's trace: the execution id is there.
      assert.equal(error.stack, `CommandTimedOut: ${error.message}\n    at execution ${error.executionId}`);
      return true;
    });
  });
});

/** Flips one bit in the middle of the signature. */
function flip(jwt: string): string {
  const [header, payload, signature] = jwt.split('.') as [string, string, string];
  const bytes = Buffer.from(signature, 'base64url');
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  return `${header}.${payload}.${bytes.toString('base64url')}`;
}
