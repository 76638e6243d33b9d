/**
 * The example's commands, tested as a team would test its own: in process,
 * through serverless-middle-management/testing (no DynamoDB, no issuer).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandFailed, InvalidArguments } from 'serverless-middle-management';
import { createTestHandler, runCommand } from 'serverless-middle-management/testing';
import { commands } from '../commands/index.js';
import echo from '../commands/echo.js';
import fail from '../commands/fail.js';
import greet from '../commands/greet.js';

describe('commands, one at a time', () => {
  it('greet uses the service’s own module', async () => {
    const run = await runCommand(greet, { name: 'Ada', style: 'pirate' });
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(run.result, { greeting: 'Ahoy, Ada!' });
    assert.deepEqual(run.output, ['Ahoy, Ada!']);
  });

  it('greet applies the schema default and plans on a dry run', async () => {
    assert.deepEqual((await runCommand(greet, { name: 'Ada' })).result, { greeting: 'Hello, Ada!' });
    const plan = await runCommand(greet, { name: 'Ada', style: 'formal' }, { dryRun: true });
    assert.equal(plan.status, 'planned');
    assert.deepEqual(plan.result, { wouldSay: 'Good day, Ada.' });
  });

  it('refuses arguments outside the schema', async () => {
    await assert.rejects(runCommand(greet, { name: 'Ada', style: 'rude' }), (error: unknown) => {
      assert.ok(error instanceof InvalidArguments);
      assert.equal(error.name, 'InvalidArguments');
      return true;
    });
  });

  it('echo repeats and never returns the secret', async () => {
    const run = await runCommand(echo, { message: 'hi', repeat: 2, secret: 's3cr3t' });
    assert.deepEqual(run.result, { message: 'hi hi' });
    assert.ok(!JSON.stringify(run).includes('s3cr3t'));
  });

  it('fail is a CommandFailed carrying its message', async () => {
    await assert.rejects(runCommand(fail, { message: 'boom' }), (error: unknown) => {
      assert.ok(error instanceof CommandFailed);
      assert.equal(error.message, 'boom');
      return true;
    });
  });
});

describe('the whole handler', () => {
  it('answers over HTTP with a token, and 401 without one', async () => {
    const service = await createTestHandler({ commands });
    const ok = await service.post('greet', { data: { name: 'Grace' } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.result, { greeting: 'Hello, Grace!' });

    const anonymous = await service.post('greet', { data: { name: 'Grace' }, token: false });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.code, 'Unauthorized');

    const record = await service.request({ path: `/__manage__/executions/${ok.body.executionId}` });
    assert.equal(record.status, 200);
    assert.equal(record.body.status, 'succeeded');
  });

  it('applies the configured allowlist and groups', async () => {
    const service = await createTestHandler({
      commands,
      env: { MANAGE_ALLOW_LIST: 'noop,echo,sleep,fail', MANAGE_COMMAND_GROUPS: '{"sleep":["ops"]}' },
    });
    assert.equal((await service.post('greet', { data: { name: 'x' } })).status, 403);
    assert.equal((await service.post('sleep', { data: { ms: 0 } })).body.error.code, 'Forbidden');
    assert.equal((await service.post('sleep', { data: { ms: 0 }, token: { groups: ['ops'] } })).status, 200);
    const list = await service.request<{ commands: { name: string }[] }>({ path: '/__manage__' });
    assert.deepEqual(list.body.commands.map((c) => c.name).sort(), ['echo', 'fail', 'noop']);
  });

  it('runs a direct invocation as Step Functions would', async () => {
    const service = await createTestHandler({ commands });
    const run = await service.invoke({ command: 'echo', data: { message: 'from a state machine' }, actor: 'arn:aws:states:example' });
    assert.deepEqual(run.result, { message: 'from a state machine' });
    await assert.rejects(service.invoke({ command: 'fail' }), { name: 'CommandFailed' });
  });

  it('runs Prefer: respond-async in an in-process worker', async () => {
    const service = await createTestHandler({ commands });
    const accepted = await service.post('echo', { data: { message: 'later' }, async: true });
    assert.equal(accepted.status, 202);
    await service.settled();
    const record = await service.request({ path: `/__manage__/executions/${accepted.body.executionId}` });
    assert.equal(record.body.status, 'succeeded');
  });
});
