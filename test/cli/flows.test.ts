/**
 * The built `mm` CLI against the real handler's long-running, approval and
 * audit features: `--wait` (the default for a long command) and `--async`
 * through a worker invocation run in process, the two-person rule with
 * `mm approve` / `mm reject`, and `mm audit verify`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, lambdaContext, type TestStack } from '../support/stack.js';
import { serveHandler, type ServedHandler } from '../support/http-server.js';
import { buildCli, makeHome, mm as runMm, type MmOptions } from './helpers.js';

const T = { timeout: 30_000 };

describe('mm with workers, approvals and the audit', { timeout: 120_000 }, () => {
  let stack: TestStack;
  let served: ServedHandler;
  const tokens: Record<'alice' | 'bob' | 'audrey', string> = { alice: '', bob: '', audrey: '' };
  const home = makeHome();

  const mm = (as: keyof typeof tokens, args: string[], options: MmOptions = {}) =>
    runMm(args, { ...options, env: { HOME: home.home, MM_CONFIG_DIR: home.configDir, MM_URL: served.url, MM_TOKEN: tokens[as], ...options.env } });

  before(async () => {
    buildCli();
    stack = await startStack({
      // The web console is set up: a request awaiting approval comes with its deep link.
      env: { MANAGE_APPROVAL: JSON.stringify({ noop: ['leads'] }), MANAGE_AUDITOR_GROUPS: 'auditors', MANAGE_CONSOLE_CLIENT_ID: 'mm-console' },
      // Event invocations of the worker run soon after, in process, as Lambda would run them.
      handlerOptions: { launcher: { launch: async (event) => void setImmediate(() => void stack.handler(event, lambdaContext())) } },
    });
    served = await serveHandler(stack.handler);
    tokens.alice = await stack.issuer.sign({ sub: 'alice', username: 'alice' }, { expiresIn: 600 });
    tokens.bob = await stack.issuer.sign({ sub: 'bob', username: 'bob', groups: ['leads'] }, { expiresIn: 600 });
    tokens.audrey = await stack.issuer.sign({ sub: 'audrey', username: 'audrey', groups: ['auditors'] }, { expiresIn: 600 });
  });

  after(async () => {
    await served?.close();
    await stack?.close();
    home.cleanup();
  });

  test('a command longer than the HTTP window is submitted and followed to its end by default', T, async () => {
    const r = await mm('alice', ['run', 'sleep', 'ms=300']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sleep succeeded/);
    assert.match(r.stdout, /"sleptMs":300/);
    const failed = await mm('alice', ['run', 'fail', 'message=late', '--wait', '--json']);
    assert.equal(failed.code, 1, failed.stdout);
    const record = JSON.parse(failed.stdout);
    assert.equal(record.status, 'failed');
    assert.equal(record.error.message, 'late');
  });

  test('--async prints the execution id; mm show follows it', T, async () => {
    const r = await mm('alice', ['run', 'sleep', 'ms=50', '--async']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^[0-9A-Z]{26}$/);
    let shown = '';
    for (let i = 0; i < 50 && !/succeeded/.test(shown); i++) {
      shown = (await mm('alice', ['show', id])).stdout;
    }
    assert.match(shown, /sleep succeeded/);
    const json = await mm('alice', ['run', 'sleep', 'ms=10', '--async', '--json']);
    assert.equal(JSON.parse(json.stdout).status, 'accepted');
  });

  test('two-person rule: the requester cannot approve; another lead approves and it runs; a rejected one never does', T, async () => {
    const requested = await mm('alice', ['run', 'noop']);
    assert.equal(requested.code, 0, requested.stderr);
    const id = requested.stdout.trim();
    assert.match(requested.stderr, new RegExp(`awaits approval.*mm approve ${id}`));
    assert.ok(requested.stderr.includes(`web console's link: ${served.url}/__manage__/console#/executions/${id}`), requested.stderr);
    assert.equal(requested.stdout, `${id}\n`, 'stdout holds the id alone');
    const json = await mm('alice', ['run', 'noop', '--json']);
    assert.equal(JSON.parse(json.stdout).approveUrl, `${served.url}/__manage__/console#/executions/${JSON.parse(json.stdout).executionId}`);
    await mm('bob', ['reject', JSON.parse(json.stdout).executionId]);
    const self = await mm('alice', ['approve', id, '--yes']);
    assert.equal(self.code, 4, self.stderr);
    const approved = await mm('bob', ['approve', id, '--yes']);
    assert.equal(approved.code, 0, approved.stderr);
    // bob is an approver, not an auditor: he is shown what he approves, and its digest is sent.
    assert.match(approved.stderr, /Approval of noop[\s\S]*requested by[\s\S]*alice[\s\S]*plan digest {2}[0-9a-f]{64}/);
    assert.match(approved.stdout, /noop succeeded/);
    const again = await mm('bob', ['approve', id, '--yes']);
    assert.equal(again.code, 6, again.stderr);

    const second = (await mm('alice', ['run', 'noop'])).stdout.trim();
    const rejected = await mm('bob', ['reject', second]);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /Rejected execution .*: rejected/);
    const shown = await mm('alice', ['show', second, '--json']);
    assert.equal(JSON.parse(shown.stdout).status, 'rejected');
  });

  test('mm audit verify: intact chains exit 0 for an auditor; others are forbidden', T, async () => {
    await mm('alice', ['run', 'echo', 'message=audited']);
    const r = await mm('audrey', ['audit', 'verify']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Audit trail verified \(all commands\): \d+ records in \d+ chains/);
    const scoped = await mm('audrey', ['audit', 'verify', '--command', 'echo', '--since', '1h', '--json']);
    assert.equal(scoped.code, 0);
    assert.equal(JSON.parse(scoped.stdout).ok, true);
    const forbidden = await mm('alice', ['audit', 'verify']);
    assert.equal(forbidden.code, 4);
  });
});
