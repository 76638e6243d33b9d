/**
 * Issue 11, item 3: what reads show is exactly what verify checks. The three
 * edits of the outside review — a forged outcome, a real execution hidden from
 * the auditor's list, a fake execution attributed to another user — made with
 * write access to the audit table but without the audit key
 * (MANAGE_AUDIT_HMAC_KEY is set). Before the fix verify said `ok: true` and the
 * reads showed the forgeries. Through HTTP, over the limits-enforcing DynamoDB.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { newExecutionId } from '../../src/ids.js';
import { actorKey } from '../../src/stores/audit/store.js';
import { startStack, type TestStack } from '../support/stack.js';
import { scanItems } from './support.js';

let stack: TestStack;
let alice: string;
let bob: string;
let auditor: string;
let documents: DynamoDBDocumentClient;

before(async () => {
  stack = await startStack({ env: { MANAGE_AUDITOR_GROUPS: 'auditors', MANAGE_AUDIT_HMAC_KEY: 'an audit key the forger does not hold, 40+ chars' } });
  alice = await stack.token({ sub: 'alice' });
  bob = await stack.token({ sub: 'bob' });
  auditor = await stack.token({ sub: 'audrey', groups: ['auditors'] });
  documents = DynamoDBDocumentClient.from(stack.dynamo.client);
});
after(() => stack.close());

const get = (token: string, id: string) => stack.http({ method: 'GET', path: `/__manage__/executions/${id}`, token });
const list = (token: string, query: Record<string, string> = {}) => stack.http({ method: 'GET', path: '/__manage__/executions', token, query: { limit: '100', ...query } });
const verify = (query: Record<string, string> = {}) => stack.http({ method: 'GET', path: '/__manage__/audit/verify', token: auditor, query });
const itemsOf = async (executionId: string) => (await scanItems(stack.dynamo)).filter((item) => item.executionId === executionId);
const put = (item: Record<string, unknown>) => documents.send(new PutCommand({ TableName: stack.dynamo.tableName, Item: item }));

describe('3. reads show exactly what verify checks (audit key set)', () => {
  it('a forged outcome beside the chain is not shown; one edited in place fails verify and the read refuses it', async () => {
    const failed = await stack.http({ path: '/__manage__/fail', token: alice, body: { data: { message: 'disk wiped' } } });
    assert.equal(failed.status, 500, failed.raw);
    const id = failed.body.error.executionId as string;
    assert.equal((await verify()).body.ok, true);

    // 1. An outcome item for the execution, in a partition of its own, that says it succeeded.
    const [attempt] = (await itemsOf(id)).filter((item) => item.kind === 'attempt');
    const forged = { executionId: id, command: 'fail', status: 'succeeded', finishedAt: new Date().toISOString(), durationMs: 1, result: { fine: true }, output: [] };
    await put({ pk: 'FORGED#1', sk: '000000000000', seq: 0, kind: 'outcome', executionId: id, record: JSON.stringify(forged), prevHash: attempt!.hash, hash: 'f'.repeat(64) });
    const shown = await get(alice, id);
    assert.equal(shown.status, 200, shown.raw);
    assert.equal(shown.body.status, 'failed', `the forged outcome was shown: ${shown.raw}`);
    assert.deepEqual(shown.body.error, { code: 'CommandFailed', message: 'disk wiped' });
    const listed = (await list(auditor)).body.executions.find((e: { executionId: string }) => e.executionId === id);
    assert.equal(listed.status, 'failed');
    await documents.send(new DeleteCommand({ TableName: stack.dynamo.tableName, Key: { pk: 'FORGED#1', sk: '000000000000' } }));

    // 2. The real outcome item rewritten in place (the forger cannot recompute its HMAC).
    const outcome = (await itemsOf(id)).find((item) => item.kind === 'outcome')!;
    await put({ ...outcome, record: JSON.stringify({ ...JSON.parse(String(outcome.record)), status: 'succeeded', error: undefined, result: { fine: true } }) });
    const report = await verify();
    assert.equal(report.body.ok, false);
    assert.ok(report.body.problems.some((p: { executionId?: string; problem: string }) => p.executionId === id && p.problem === 'altered'), report.raw);
    const refused = await get(alice, id);
    assert.equal(refused.status, 503, refused.raw);
    assert.match(refused.body.error.message, /do not verify/);
    const page = await list(auditor);
    assert.equal(page.status, 200, page.raw);
    assert.equal(page.body.executions.some((e: { executionId: string }) => e.executionId === id), false);
    assert.deepEqual(page.body.withheld.find((w: { executionId: string }) => w.executionId === id)?.reason, 'its records do not verify');
    await put(outcome);
    assert.equal((await verify()).body.ok, true, 'restored');
  });

  it("a real execution hidden from the auditor's list (its index attributes removed) fails verify", async () => {
    const ran = await stack.http({ path: '/__manage__/echo', token: alice, body: { data: { message: 'quietly' } } });
    assert.equal(ran.status, 200, ran.raw);
    const id = ran.body.executionId as string;
    const attempt = (await itemsOf(id)).find((item) => item.kind === 'attempt')!;
    const { listAll: _all, command: _command, ...hidden } = attempt;
    await put(hidden);
    assert.equal((await list(auditor)).body.executions.some((e: { executionId: string }) => e.executionId === id), false, 'hidden from the list');
    const report = await verify();
    assert.equal(report.body.ok, false, `the hidden execution went unnoticed: ${report.raw}`);
    assert.ok(report.body.problems.some((p: { executionId?: string; problem: string }) => p.executionId === id && p.problem === 'misindexed'), report.raw);
    // Moved to another actor's list by its index attribute alone: not shown there either.
    await put({ ...attempt, actorKey: actorKey({ kind: 'token', issuer: stack.issuer.issuer, subject: 'bob', groups: [], scopes: [] }) });
    const bobs = await list(bob);
    assert.equal(bobs.body.executions.some((e: { executionId: string }) => e.executionId === id), false, bobs.raw);
    assert.equal((await verify()).body.ok, false);
    await put(attempt);
    assert.equal((await verify()).body.ok, true, 'restored');
  });

  it('a fake execution attributed to another user is neither listed nor readable, and verify reports it', async () => {
    const id = newExecutionId(Date.now());
    const bobKey = actorKey({ kind: 'token', issuer: stack.issuer.issuer, subject: 'bob', groups: [], scopes: [] });
    const record = {
      executionId: id,
      command: 'echo',
      status: 'running',
      dryRun: false,
      actor: { kind: 'token', issuer: stack.issuer.issuer, subject: 'bob', groups: [], scopes: [] },
      source: { channel: 'http' },
      args: { message: 'DROP TABLE customers' },
      startedAt: new Date().toISOString(),
      deadline: new Date(Date.now() + 60_000).toISOString(),
      timeLimitMs: 60_000,
    };
    await put({ pk: 'FAKE#1', sk: '000000000001', seq: 1, kind: 'attempt', executionId: id, record: JSON.stringify(record), prevHash: '0'.repeat(64), hash: 'e'.repeat(64), listSk: id, actorKey: bobKey, command: 'echo', listAll: 'ALL' });

    const bobs = await list(bob);
    assert.equal(bobs.status, 200, bobs.raw);
    assert.equal(bobs.body.executions.some((e: { executionId: string }) => e.executionId === id), false, `the fake was listed: ${bobs.raw}`);
    assert.ok(bobs.body.withheld.some((w: { executionId: string }) => w.executionId === id));
    assert.equal((await list(auditor, { command: 'echo' })).body.executions.some((e: { executionId: string }) => e.executionId === id), false);
    assert.equal((await get(bob, id)).status, 404);
    assert.equal((await get(auditor, id)).status, 404);
    const report = await verify();
    assert.equal(report.body.ok, false, `the fake went unnoticed: ${report.raw}`);
    assert.ok(report.body.problems.some((p: { executionId?: string; problem: string }) => p.executionId === id && p.problem === 'outside_chain'), report.raw);
    const narrowed = await verify({ command: 'echo' });
    assert.equal(narrowed.body.ok, false, 'found through the byCommand index too');
    await documents.send(new DeleteCommand({ TableName: stack.dynamo.tableName, Key: { pk: 'FAKE#1', sk: '000000000001' } }));
    assert.equal((await verify()).body.ok, true);
    assert.equal((await verify({ command: 'noop' })).body.ok, true, 'a verify of one command does not report the others');
  });
});
