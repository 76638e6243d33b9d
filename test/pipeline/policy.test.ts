import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Policy } from '../../src/pipeline/policy.js';
import { commands, config, user } from './support.js';

const logger = { log: () => undefined };
const policy = (env: Record<string, string> = {}) => new Policy({ config: config(env), commands, logger });

describe('policy: which names are commands that may run', () => {
  it('refuses alike a name not allowed, not a command, or not a name', async () => {
    const p = policy();
    for (const name of ['hidden', 'nope', 'Touch', '../touch', '', 'constructor', '__proto__']) {
      await assert.rejects(p.command(name), { name: 'CommandNotAllowed' }, name);
    }
    assert.equal((await p.command('touch')).name, 'touch');
    assert.equal(await p.command('touch'), await p.command('touch'), 'loaded once');
  });

  it('a command that fails to load is an internal error, and is tried again next time', async () => {
    let calls = 0;
    const p = new Policy({
      config: config({ MANAGE_ALLOW_LIST: 'touch,broken' }),
      commands: { ...commands, broken: () => (++calls === 1 ? Promise.reject(new Error('boom')) : commands.touch!()) },
      logger,
    });
    await assert.rejects(p.command('broken'), { name: 'InternalError' });
    assert.equal((await p.command('broken')).name, 'broken');
  });

  it('lists allowed and defined names, sorted', () => {
    assert.deepEqual(policy({ MANAGE_ALLOW_LIST: 'touch,guarded,broken' }).allowedNames(), ['broken', 'guarded', 'touch']);
    assert.deepEqual(policy().definedNames(), ['broken', 'guarded', 'hidden', 'touch']);
  });
});

describe('policy: who may run, read, decide', () => {
  it('groups and scopes are token rules; config only tightens; a direct invoker is trusted', async () => {
    const p = policy({ MANAGE_COMMAND_GROUPS: '{"guarded":["leads"]}' });
    const guarded = await p.command('guarded');
    assert.equal(p.mayRun(guarded, user('a', ['ops'], ['mm/run'])), false, 'config adds a rule');
    assert.equal(p.mayRun(guarded, user('a', ['ops', 'leads'], ['mm/run'])), true);
    assert.equal(p.mayRun(guarded, user('a', ['ops', 'leads'])), false, 'scope missing');
    assert.equal(p.mayRun(guarded, { kind: 'invoke', name: 'sfn' }), true);
    assert.throws(() => p.authorize(guarded, user('a')), { name: 'Forbidden' });
  });

  it('an execution is readable by its actor and by auditors; approvers may see where a decision stands', () => {
    const p = policy({ MANAGE_APPROVAL: '{"touch":["leads"]}' });
    const record = { actor: user('alice'), command: 'touch' } as never;
    assert.equal(p.mayRead(record, user('alice')), true);
    assert.equal(p.mayRead(record, user('bob')), false);
    assert.equal(p.mayRead(record, user('carol', ['auditors'])), true);
    assert.equal(p.mayRead(record, { kind: 'invoke', name: 'auditors' }), false);
    assert.equal(p.maySeeDecision(record, user('lena', ['leads'])), true);
    assert.equal(p.maySeeDecision(record, user('bob', ['ops'])), false);
    assert.equal(p.isApprover(user('lena', ['leads']), ['leads']), true);
    assert.equal(p.isApprover({ kind: 'invoke', name: 'x' }, ['leads']), false);
  });

  it('config names approvers and exclusive commands; time limits stay within the bound', async () => {
    const p = policy({ MANAGE_APPROVAL: '{"touch":["leads"]}', MANAGE_EXCLUSIVE: 'touch' });
    const touch = await p.command('touch');
    assert.deepEqual(p.approversOf('touch', touch), ['leads']);
    assert.deepEqual(p.approversOf('guarded'), []);
    assert.equal(p.isExclusive(touch), true);
    assert.equal(p.isExclusive(await p.command('guarded')), false);
    assert.equal(p.timeLimit(touch, 5), 5);
    assert.equal(p.timeLimit(touch, -10), 1);
    assert.equal(p.timeLimit(touch, 10_000_000), 25_000);
  });
});
