import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandFailed } from '../../src/errors.js';
import { Recorder, finalOutcome } from '../../src/pipeline/recorder.js';
import { MemoryAuditStore } from '../../src/stores/audit/memory.js';
import { MemoryStateStore } from '../../src/stores/state/store.js';
import { config, user } from './support.js';

/** An audit store whose appends fail `failures` times first. */
function flaky(failures: number) {
  const store = new MemoryAuditStore();
  let left = failures;
  const append = store.append.bind(store);
  store.append = async (entry) => {
    if (left-- > 0) throw new Error('throttled');
    return append(entry);
  };
  return store;
}

const recorder = (audit = new MemoryAuditStore(), now = Date.now, env: Record<string, string> = {}) => {
  const logs: string[] = [];
  return { logs, recorder: new Recorder({ config: config(env), audit, state: new MemoryStateStore(), logger: { log: (_level, event) => void logs.push(event) }, now }) };
};

const outcome = { executionId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', command: 'touch', status: 'succeeded' as const, finishedAt: new Date().toISOString(), durationMs: 1, output: [] };

describe('recorder', () => {
  it('append or refuse: a record that cannot be written is a 503, logged', async () => {
    const { recorder: r, logs } = recorder(flaky(1));
    await assert.rejects(r.appendOrRefuse({ kind: 'outcome', record: outcome }, {}), { name: 'AuditUnavailable' });
    assert.deepEqual(logs, ['audit.append_failed']);
  });

  it('retries the outcome write, and stops when the caller would stop waiting', async () => {
    assert.equal(await recorder(flaky(2)).recorder.recordOutcome(outcome, {}), true);
    const late = recorder(flaky(1));
    assert.equal(await late.recorder.recordOutcome(outcome, {}, Date.now() - 1), false);
    assert.deepEqual(late.logs, ['audit.outcome_failed']);
  });

  it('fails closed on the state store, and best-effort writes never throw', async () => {
    const { recorder: r, logs } = recorder();
    await assert.rejects(r.guardState(() => Promise.reject(new Error('down'))), { name: 'AuditUnavailable' });
    await r.bestEffort('x.failed', () => Promise.reject(new Error('down')));
    await assert.rejects(r.readAudit(() => Promise.reject(new Error('down'))), { name: 'AuditUnavailable' });
    assert.deepEqual(logs, ['state.unavailable', 'x.failed', 'audit.read_failed']);
  });

  it('closes an execution that never ran', async () => {
    const audit = new MemoryAuditStore();
    const { recorder: r } = recorder(audit);
    await r.loadDigestKey();
    const id = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    const attempt = r.attemptRecord({ name: 'touch', description: '', args: {} as never, run: () => 1 }, {}, id, {
      command: 'touch', data: {}, dryRun: false, actor: user('alice'), source: { channel: 'http' }, maxTimeMs: 1000,
    }, { status: 'accepted', started: Date.now(), deadline: Date.now() + 1000, timeLimitMs: 1000 });
    await r.appendOrRefuse({ kind: 'attempt', record: attempt }, {});
    await r.closeUnrun(id, 'touch', new CommandFailed('no worker'));
    const record = await r.getExecution(id);
    assert.equal(record?.status, 'failed');
    assert.deepEqual(record?.error, { code: 'CommandFailed', message: 'no worker' });
  });

  it('attempt records redact sensitive arguments and key-hash them when a key is set', () => {
    const { recorder: r } = recorder(undefined, Date.now, { MANAGE_AUDIT_HMAC_KEY: 'k'.repeat(32) });
    const command = { name: 'touch', description: '', args: {} as never, sensitive: ['token'], run: () => 1 };
    const record = r.attemptRecord(command, { label: 'a', token: 's3cret' }, 'X', {
      command: 'touch', data: {}, dryRun: false, actor: user('alice'), source: { channel: 'http' }, maxTimeMs: 1, idempotencyKey: 'k1',
    }, { status: 'running', started: 0, deadline: 1, timeLimitMs: 1 });
    assert.equal(JSON.stringify(record).includes('s3cret'), false);
    assert.match(record.argsHmac!.token!, /^[0-9a-f]{64}$/);
    assert.equal(record.idempotencyKey, 'k1');
  });

  it('final outcome: the answer a caller got, from the record', () => {
    const base = { executionId: 'X', command: 'touch', actor: user('a'), startedAt: 't' } as const;
    assert.equal((finalOutcome({ ...base, status: 'succeeded' } as never) as { status: string }).status, 'succeeded');
    assert.equal((finalOutcome({ ...base, status: 'timed_out' } as never) as Error).name, 'CommandTimedOut');
    assert.equal((finalOutcome({ ...base, status: 'rejected' } as never) as Error).name, 'Forbidden');
    assert.equal(finalOutcome({ ...base, status: 'running' } as never), undefined);
  });
});
