/** The rooms through their public entry points (createPipeline), over in-memory stores. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ran, request, rooms, user } from './support.js';

const alice = user('alice');
const lena = user('lena', ['leads']);

describe('running', () => {
  it('allowlist → authorize → validate, then attempt, run and outcome in the audit', async () => {
    const r = rooms();
    await assert.rejects(r.running.execute(request('hidden', {}, alice)), { name: 'CommandNotAllowed' });
    await assert.rejects(r.running.execute(request('guarded', {}, alice)), { name: 'Forbidden' });
    await assert.rejects(r.running.execute(request('touch', {}, alice)), { name: 'InvalidArguments' });
    const response = await r.running.execute(request('touch', { label: 'now', token: 'tok-secret-1' }, alice));
    assert.equal(response.status, 'succeeded');
    const record = await r.audit.getExecution(response.executionId);
    assert.equal(record?.status, 'succeeded');
    assert.deepEqual(record?.output, ['touched now']);
    assert.equal(JSON.stringify(record).includes('tok-secret-1'), false);
  });

  it('a retry with the same idempotency key gets the first outcome; the command ran once', async () => {
    const r = rooms();
    const first = await r.running.execute(request('touch', { label: 'idem' }, alice, { idempotencyKey: 'k' }));
    const again = await r.running.execute(request('touch', { label: 'idem' }, alice, { idempotencyKey: 'k' }));
    assert.equal(again.executionId, first.executionId);
    assert.equal(ran.filter((label) => label === 'idem').length, 1);
    await assert.rejects(r.running.execute(request('touch', { label: 'other' }, alice, { idempotencyKey: 'k' })), { name: 'Conflict' });
  });

  it('a dry run answers the plan, and is refused for a command without one', async () => {
    const r = rooms();
    const planned = await r.running.execute(request('touch', { label: 'dry' }, alice, { dryRun: true }));
    assert.equal(planned.status, 'planned');
    assert.equal(ran.includes('dry'), false);
    await assert.rejects(r.running.execute(request('guarded', {}, { kind: 'invoke', name: 'x' }, { dryRun: true })), { name: 'InvalidRequest' });
  });
});

describe('deferring', () => {
  it('an approval request waits; the requester may not decide; another approver runs it', async () => {
    const r = rooms({ MANAGE_APPROVAL: '{"touch":["leads"]}' });
    const pending = await r.running.execute(request('touch', { label: 'approved' }, lena));
    assert.equal(pending.status, 'awaiting_approval');
    assert.equal(ran.includes('approved'), false);
    assert.equal(pending.status, 'awaiting_approval');
    const planDigest = (pending as { planDigest: string }).planDigest;
    await assert.rejects(r.deferring.decide(pending.executionId, user('omar', ['leads']), 'approved', { maxTimeMs: 30_000 }), { name: 'InvalidRequest' });
    await assert.rejects(r.deferring.decide(pending.executionId, lena, 'approved', { planDigest, maxTimeMs: 30_000 }), { name: 'Forbidden' });
    // Neither approver, requester nor auditor: told what an unknown id gets.
    await assert.rejects(r.deferring.decide(pending.executionId, alice, 'approved', { planDigest, maxTimeMs: 30_000 }), { name: 'NotFound' });
    const done = await r.deferring.decide(pending.executionId, user('omar', ['leads']), 'approved', { planDigest, maxTimeMs: 30_000 });
    assert.equal(done.status, 'succeeded', 'within this request\'s window: run now, not by a worker');
    assert.equal(ran.filter((label) => label === 'approved').length, 1);
    await assert.rejects(r.deferring.decide(pending.executionId, user('omar', ['leads']), 'approved', { planDigest, maxTimeMs: 30_000 }), { name: 'Conflict' });
  });

  it('an async request is accepted, then run once by its worker', async () => {
    const r = rooms();
    const accepted = await r.running.execute(request('touch', { label: 'async' }, alice, { respondAsync: true }));
    assert.equal(accepted.status, 'accepted');
    assert.equal(r.queued.length, 1);
    await r.deferring.runAccepted(accepted.executionId, 10_000);
    await r.deferring.runAccepted(accepted.executionId, 10_000);
    assert.equal(ran.filter((label) => label === 'async').length, 1);
    assert.equal((await r.audit.getExecution(accepted.executionId))?.status, 'succeeded');
  });
});

describe('reading', () => {
  it('lists the commands this caller may run; shows an execution to its actor and auditors only', async () => {
    const r = rooms();
    assert.deepEqual((await r.reading.listCommands(alice)).map((c) => c.name), ['touch']);
    assert.deepEqual((await r.reading.listCommands(user('olga', ['ops'], ['mm/run']))).map((c) => c.name), ['guarded', 'touch']);
    const { executionId } = await r.running.execute(request('touch', { label: 'read' }, alice));
    assert.equal((await r.reading.getExecution(executionId, alice)).executionId, executionId);
    assert.equal((await r.reading.getExecution(executionId, user('carol', ['auditors']))).executionId, executionId);
    await assert.rejects(r.reading.getExecution(executionId, user('bob')), { name: 'NotFound' });
    await assert.rejects(r.reading.getExecution('not-an-id', alice), { name: 'NotFound' });
    assert.equal((await r.reading.listExecutions(user('bob'), {})).executions.length, 0);
    assert.equal((await r.reading.listExecutions(alice, {})).executions.length, 1);
    await assert.rejects(r.reading.listExecutions(alice, { limit: '0' }), { name: 'InvalidRequest' });
  });

  it('verifies the audit chains for auditors only', async () => {
    const r = rooms();
    await r.running.execute(request('touch', { label: 'chain' }, alice));
    await assert.rejects(r.reading.verifyAudit(alice, {}), { name: 'Forbidden' });
    const report = await r.reading.verifyAudit(user('carol', ['auditors']), {});
    assert.equal(report.ok, true);
  });
});
