/**
 * Issue 11, phase 1: each hole an outside review found, reproduced through the
 * public entry points (HTTP events, direct invocation) over a DynamoDB that
 * enforces the real limits (test/support/dynamo-limits.ts), with real signed
 * tokens. Each test failed on the code before the fix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { defineCommand, type CommandLoader } from '../../src/command.js';
import { canonicalJson, planDigestOf } from '../../src/pipeline/rails.js';
import { RECORD_MAX_BYTES } from '../../src/redact.js';
import { DynamoStateStore } from '../../src/stores/state/dynamodb.js';
import type { StateStore } from '../../src/stores/state/store.js';
import type { WorkerEvent, WorkerLauncher } from '../../src/handler/worker.js';
import { startStack, type TestStack } from '../support/stack.js';
import { scanItems } from './support.js';

const SECRET = 'p"ss\\wo\'rd<>&\u2028';
const PIN = 482913;

const commands: Record<string, CommandLoader> = {
  vault: async () => ({
    default: defineCommand({
      description: 'Opens the vault with a pin (test only).',
      args: Type.Object({ door: Type.String(), pin: Type.Integer() }),
      sensitive: ['pin'],
      approvers: ['leads'],
      run: () => ({ opened: true }),
    }),
  }),
  leaky: async () => ({
    default: defineCommand({
      description: 'Leaks its secrets every way it can (test only).',
      args: Type.Object({
        secret: Type.String(),
        pin: Type.Integer(),
        blob: Type.Object({ token: Type.String(), nested: Type.Object({ code: Type.Integer() }) }),
        fail: Type.Optional(Type.Boolean()),
      }),
      sensitive: ['secret', 'pin', 'blob'],
      run({ secret, pin, blob, fail }, ctx) {
        ctx.log({ secret, pin });
        ctx.log('as text:', secret, pin, JSON.stringify({ secret }));
        ctx.log({ blob }, [blob.nested.code]);
        if (fail) throw new Error(`could not use ${JSON.stringify({ secret, blob })} or ${pin}`);
        return { pin, secret, copy: { blob }, list: [pin, blob.token], [secret]: 'as a key' };
      },
    }),
  }),
  chatty: async () => ({
    default: defineCommand({
      description: 'Logs 200 lines of 1,000 characters that JSON escapes (test only).',
      args: Type.Object({}),
      timeLimitMs: 20_000,
      run(_args, ctx) {
        for (let i = 0; i < 200; i++) ctx.log(`${String(i).padStart(3, '0')}${'\u0001"\\'.repeat(333)}`);
        return { lines: 200 };
      },
    }),
  }),
  approveme: async () => ({
    default: defineCommand({
      description: 'Takes a payload and needs an approval (test only).',
      args: Type.Object({ payload: Type.String() }),
      approvers: ['leads'],
      run: () => ({ ok: true }),
    }),
  }),
};

class QueuedLauncher implements WorkerLauncher {
  readonly queued: WorkerEvent[] = [];
  async launch(event: WorkerEvent) {
    this.queued.push(event);
  }
}

let stack: TestStack;
let alice: string;
let auditor: string;
const launcher = new QueuedLauncher();

before(async () => {
  stack = await startStack({ commands, env: { MANAGE_AUDITOR_GROUPS: 'auditors' }, handlerOptions: { launcher } });
  alice = await stack.token({ sub: 'alice' });
  auditor = await stack.token({ sub: 'audrey', groups: ['auditors'] });
});
after(() => stack.close());

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function scanState(): Promise<Record<string, unknown>[]> {
  const documents = DynamoDBDocumentClient.from(stack.dynamo.client);
  const { Items = [] } = await documents.send(new ScanCommand({ TableName: stack.dynamo.stateTableName, ConsistentRead: true }));
  return Items;
}

describe('1. plan digests and idempotency fingerprints reveal nothing of a sensitive argument', () => {
  it('a 4-digit pin cannot be recovered from the plan digest; the approver can recompute the digest from the record', async () => {
    const pin = 4821;
    const response = await stack.http({ path: '/__manage__/vault', token: alice, body: { data: { door: 'front', pin } } });
    assert.equal(response.status, 202, response.raw);
    const digest = response.body.planDigest as string;
    assert.match(digest, /^[0-9a-f]{64}$/);
    // The review's attack: try every pin against the unkeyed digest (68 ms for 10,000).
    for (let guess = 0; guess <= 9999; guess++) {
      const args = { door: 'front', pin: guess };
      assert.notEqual(sha256(`vault\n${canonicalJson(args)}`), digest, `the digest gives the pin away (${guess})`);
      assert.notEqual(sha256(`vault\n${canonicalJson({ door: 'front', pin: '[REDACTED]' })}\n${canonicalJson({ pin: sha256(String(guess)) })}`), digest);
    }
    // What the approver sees is enough to check the digest: the record's args and argsHmac.
    const record = await stack.http({ method: 'GET', path: `/__manage__/executions/${response.body.executionId}`, token: auditor });
    assert.equal(record.status, 200, record.raw);
    assert.equal(record.body.args.pin, '[REDACTED]');
    assert.match(record.body.argsHmac?.pin ?? '', /^[0-9a-f]{64}$/);
    assert.equal(planDigestOf('vault', record.body.args, record.body.argsHmac), digest);
    assert.equal(record.body.planDigest, digest);
    assert.doesNotMatch(record.raw, new RegExp(`\\b${pin}\\b`));
  });

  it('the idempotency fingerprint in the state table is keyed: a dictionary does not find the secret', async () => {
    const data = { message: 'hello', secret: 'hunter2' };
    const response = await stack.http({ path: '/__manage__/echo', token: alice, headers: { 'idempotency-key': 'fp-1' }, body: { data } });
    assert.equal(response.status, 200, response.raw);
    const items = await scanState();
    const remembered = items.filter((item) => String(item.pk).startsWith('IDEMPOTENCY#')).map((item) => JSON.parse(String(item.value)));
    const fingerprints = remembered.map((value) => value.fingerprint as string);
    assert.ok(fingerprints.length > 0);
    for (const word of ['password', 'letmein', 'hunter2', 'qwerty']) {
      const guess = sha256(canonicalJson({ data: { message: 'hello', secret: word }, dryRun: false }));
      assert.ok(!fingerprints.includes(guess), `the fingerprint gives "${word}" away`);
    }
    // The key was made once for the deployment, in the state table (MANAGE_AUDIT_HMAC_KEY is not set here).
    assert.equal(items.filter((item) => item.pk === 'KEY#digests').length, 1);
    // And a retry with the same key and payload still replays; with another secret it is a conflict.
    const again = await stack.http({ path: '/__manage__/echo', token: alice, headers: { 'idempotency-key': 'fp-1' }, body: { data } });
    assert.equal(again.body.executionId, response.body.executionId);
    const other = await stack.http({ path: '/__manage__/echo', token: alice, headers: { 'idempotency-key': 'fp-1' }, body: { data: { ...data, secret: 'hunter3' } } });
    assert.equal(other.status, 409);
  });
});

describe('2. the scrubber catches every form of a sensitive value', () => {
  const data = { secret: SECRET, pin: PIN, blob: { token: 'tok-7f3a9c', nested: { code: 907531 } } };
  const forms = (value: string) => [value, JSON.stringify(value).slice(1, -1), JSON.stringify(JSON.stringify(value)).slice(1, -1)];
  const needles = [...forms(SECRET), String(PIN), 'tok-7f3a9c', '907531'];
  const assertClean = (where: string, text: string) => {
    for (const needle of needles) assert.ok(!text.includes(needle), `${where} holds ${JSON.stringify(needle)}: ${text.slice(0, 400)}`);
  };

  it('ctx.log of objects, numbers, nested objects, keys, the result and error messages: in responses, logs and the audit', async () => {
    const target = stack.withEnv({});
    const ok = await target.http({ path: '/__manage__/leaky', token: alice, body: { data } });
    assert.equal(ok.status, 200, ok.raw);
    assertClean('the output logged with ctx.log', JSON.stringify(ok.body.output));
    assertClean('the result', JSON.stringify(ok.body.result));
    assert.equal(ok.body.result.pin, '[REDACTED]');
    assertClean('the response', ok.raw);

    const failed = await target.http({ path: '/__manage__/leaky', token: alice, body: { data: { ...data, fail: true } } });
    assert.equal(failed.status, 500, failed.raw);
    assertClean('the error response', failed.raw);

    const invoked = await target.invoke({ command: 'leaky', data });
    assertClean('the direct invocation', JSON.stringify(invoked));
    await assert.rejects(target.invoke({ command: 'leaky', data: { ...data, fail: true } }), (error: Error) => {
      assertClean('the thrown error', `${error.message} ${error.stack}`);
      return error.name === 'CommandFailed';
    });

    for (const id of [ok.body.executionId, failed.body.error.executionId]) {
      const record = await stack.http({ method: 'GET', path: `/__manage__/executions/${id}`, token: alice });
      assert.equal(record.status, 200, record.raw);
      assertClean('the audit record as read', record.raw);
    }
    assertClean('the logs', target.logs.join('\n'));
    assertClean('the audit table', JSON.stringify(await scanItems(stack.dynamo)));
  });
});

describe('4. verify?since= cannot be made to skip an edit', () => {
  it('a back-dated edit of a record after `since` is reported', async () => {
    const keyed = stack.withEnv({ MANAGE_AUDIT_HMAC_KEY: 'k'.repeat(40) });
    await keyed.invoke({ command: 'noop', actor: 'before' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const since = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const victim = await keyed.invoke({ command: 'noop', actor: 'victim' });
    await keyed.invoke({ command: 'noop', actor: 'after' });

    const clean = await keyed.http({ method: 'GET', path: '/__manage__/audit/verify', query: { command: 'noop', since }, token: auditor });
    assert.equal(clean.status, 200, clean.raw);
    assert.equal(clean.body.ok, true, clean.raw);

    // The forger rewrites the victim's attempt (another actor) and dates it before `since`.
    const items = await scanItems(stack.dynamo);
    const attempt = items.find((item) => item.executionId === victim.executionId && item.kind === 'attempt')!;
    const record = JSON.parse(String(attempt.record));
    record.actor = { kind: 'invoke', name: 'someone-else' };
    record.startedAt = '2001-01-01T00:00:00.000Z';
    const documents = DynamoDBDocumentClient.from(stack.dynamo.client);
    await documents.send(new PutCommand({ TableName: stack.dynamo.tableName, Item: { ...attempt, record: JSON.stringify(record) } }));

    const report = await keyed.http({ method: 'GET', path: '/__manage__/audit/verify', query: { command: 'noop', since }, token: auditor });
    assert.equal(report.status, 200, report.raw);
    assert.equal(report.body.ok, false, `the edit went unnoticed: ${report.raw}`);
    assert.ok(report.body.problems.some((p: { executionId?: string }) => p.executionId === victim.executionId), report.raw);
  });
});

describe('5. records are capped by their stored bytes', () => {
  it('200 lines × 1,000 characters that escape: recorded, cut with a note, and never read as timed out', async () => {
    const response = await stack.http({ path: '/__manage__/chatty', token: alice, body: {} });
    assert.equal(response.status, 200, response.raw);
    assert.equal(response.body.auditRecorded, undefined, 'the outcome was recorded');
    assert.equal(response.body.output.length, 200, 'the caller still gets every line');
    assert.deepEqual(stack.dynamo.limits.rejections, [], 'DynamoDB refused nothing');

    const record = await stack.http({ method: 'GET', path: `/__manage__/executions/${response.body.executionId}`, token: alice });
    assert.equal(record.status, 200, record.raw);
    assert.equal(record.body.status, 'succeeded');
    assert.equal(record.body.outcomeRecorded, true);
    const cut = record.body.truncated?.output;
    assert.ok(cut && cut.lines > 0 && cut.bytes > 0, `the record says what was cut: ${JSON.stringify(record.body.truncated)}`);
    assert.equal(record.body.output.length + cut.lines, 200);
    const stored = (await scanItems(stack.dynamo)).find((item) => item.executionId === response.body.executionId && item.kind === 'outcome')!;
    assert.ok(Buffer.byteLength(String(stored.record)) <= RECORD_MAX_BYTES);
  });
});

describe('11. long identities and keys cannot make the audit unwritable', () => {
  it('a 3,000-character sub runs, is listed and readable; nothing DynamoDB would refuse is sent', async () => {
    const long = await stack.token({ sub: `u${'x'.repeat(2999)}` });
    const response = await stack.http({ path: '/__manage__/noop', token: long, body: {} });
    assert.equal(response.status, 200, response.raw);
    const listed = await stack.http({ method: 'GET', path: '/__manage__/executions', token: long });
    assert.equal(listed.status, 200, listed.raw);
    assert.ok(listed.body.executions.some((e: { executionId: string }) => e.executionId === response.body.executionId));
    const shown = await stack.http({ method: 'GET', path: `/__manage__/executions/${response.body.executionId}`, token: long });
    assert.equal(shown.status, 200, shown.raw);
    // Another user's long sub that shares the first 2,000 characters is someone else.
    const other = await stack.token({ sub: `u${'x'.repeat(2998)}y` });
    const hidden = await stack.http({ method: 'GET', path: `/__manage__/executions/${response.body.executionId}`, token: other });
    assert.equal(hidden.status, 404);
    assert.deepEqual(stack.dynamo.limits.rejections, []);
  });
});

describe('12. what DynamoDB refuses as invalid is the request’s fault, not an outage', () => {
  it('a 500 kB argument in a direct invocation is InvalidRequest, not AuditUnavailable', async () => {
    await assert.rejects(stack.invoke({ command: 'approveme', data: { payload: 'x'.repeat(500_000) } }), (error: Error) => {
      assert.equal(error.name, 'InvalidRequest', `${error.name}: ${error.message}`);
      return true;
    });
  });

  it('with a body limit above what DynamoDB stores, the refused write is a 400 InvalidRequest over HTTP and invocation', async () => {
    const roomy = stack.withEnv({ MANAGE_MAX_BODY_BYTES: String(2 * 1024 * 1024) });
    const big = { payload: 'x'.repeat(450_000) };
    const response = await roomy.http({ path: '/__manage__/approveme', token: alice, body: { data: big } });
    assert.equal(response.status, 400, response.raw);
    assert.equal(response.body.error.code, 'InvalidRequest');
    await assert.rejects(roomy.invoke({ command: 'approveme', data: big }), { name: 'InvalidRequest' });
  });
});

describe('13. reads that decide are strongly consistent; reads tolerate index lag', () => {
  it('right after a 200 or a 202, the execution reads back although the indexes lag', async () => {
    stack.dynamo.limits.indexLagMs = 60_000;
    try {
      const ran = await stack.http({ path: '/__manage__/noop', token: alice, body: {} });
      assert.equal(ran.status, 200, ran.raw);
      const shown = await stack.http({ method: 'GET', path: `/__manage__/executions/${ran.body.executionId}`, token: alice });
      assert.equal(shown.status, 200, shown.raw);
      assert.equal(shown.body.status, 'succeeded');

      const accepted = await stack.http({ path: '/__manage__/noop', token: alice, headers: { prefer: 'respond-async' }, body: {} });
      assert.equal(accepted.status, 202, accepted.raw);
      const pending = await stack.http({ method: 'GET', path: `/__manage__/executions/${accepted.body.executionId}`, token: alice });
      assert.equal(pending.status, 200, pending.raw);
      assert.equal(pending.body.status, 'accepted');
    } finally {
      stack.dynamo.limits.indexLagMs = 0;
    }
  });

  it('an approval decided a moment ago is known to a second approver (409), not unknown (404)', async () => {
    const lena = await stack.token({ sub: 'lena', groups: ['leads'] });
    const omar = await stack.token({ sub: 'omar', groups: ['leads'] });
    // Approvers named in the configuration (those the command declares are phase 2's: issue 11 item 6).
    const approvals = stack.withEnv({ MANAGE_APPROVAL: '{"vault":["leads"]}' });
    stack.dynamo.limits.indexLagMs = 60_000;
    try {
      const requested = await approvals.http({ path: '/__manage__/vault', token: alice, body: { data: { door: 'back', pin: 1234 } } });
      assert.equal(requested.status, 202, requested.raw);
      const id = requested.body.executionId;
      const approved = await approvals.http({ path: `/__manage__/executions/${id}/approve`, token: lena, body: { planDigest: requested.body.planDigest } });
      assert.equal(approved.status, 200, approved.raw);
      const late = await approvals.http({ path: `/__manage__/executions/${id}/approve`, token: omar, body: { planDigest: requested.body.planDigest } });
      assert.equal(late.status, 409, late.raw);
      assert.match(late.body.error.message, /succeeded/);
    } finally {
      stack.dynamo.limits.indexLagMs = 0;
    }
  });

  it('idempotency recovery reads the execution consistently: a retry gets the outcome, not a 409', async () => {
    // The first request's outcome is never remembered under its key (the state store fails that write).
    const base = new DynamoStateStore({ tableName: stack.dynamo.stateTableName, region: 'us-east-1', endpoint: stack.dynamo.endpoint });
    const forgetful: StateStore = {
      create: (item) => base.create(item),
      get: (pk) => base.get(pk),
      delete: (pk, owner, options) => base.delete(pk, owner, options),
      replace: async () => {
        throw new Error('lost');
      },
    };
    const target = stack.withEnv({}, { state: forgetful });
    stack.dynamo.limits.indexLagMs = 60_000;
    try {
      const first = await target.http({ path: '/__manage__/echo', token: alice, headers: { 'idempotency-key': 'lagged-1' }, body: { data: { message: 'once' } } });
      assert.equal(first.status, 200, first.raw);
      const retry = await target.http({ path: '/__manage__/echo', token: alice, headers: { 'idempotency-key': 'lagged-1' }, body: { data: { message: 'once' } } });
      assert.equal(retry.status, 200, retry.raw);
      assert.equal(retry.body.executionId, first.body.executionId);
    } finally {
      stack.dynamo.limits.indexLagMs = 0;
    }
  });
});
