/**
 * The safety rails through the handler: idempotent retries, exclusive
 * commands, two-person approval and the tamper-evident audit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteItemCommand, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { Type } from '@sinclair/typebox';
import { defineCommand } from '../../src/command.js';
import { commandLoaders } from '../../example/commands/index.js';
import { CommandLeases } from '../../src/pipeline/rails.js';
import { chainOf } from '../../src/stores/audit/chain.js';
import { DynamoStateStore } from '../../src/stores/state/dynamodb.js';
import { startStack, type TestStack } from '../support/stack.js';

/** Every run of the test commands, by label: the side effect the rails must guard. */
const runs: string[] = [];
const testCommands = {
  touch: async () => ({
    default: defineCommand({
      description: 'Records that it ran, after an optional wait (test only).',
      args: Type.Object({ label: Type.String(), waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 5000 })), token: Type.Optional(Type.String()) }),
      sensitive: ['token'],
      async run({ label, waitMs }) {
        runs.push(label);
        if (waitMs) await sleep(waitMs);
        return { label };
      },
    }),
  }),
  migrate: async () => ({
    default: defineCommand({
      description: 'An exclusive command (test only).',
      args: Type.Object({ label: Type.String() }),
      exclusive: true,
      timeLimitMs: 2000,
      async run({ label }) {
        runs.push(label);
        // Long enough that all ten concurrent requests reach the lease while it is held.
        await sleep(500);
        return { label };
      },
    }),
  }),
};
const count = (label: string) => runs.filter((r) => r === label).length;

let stack: TestStack;
let alice: string;
before(async () => {
  stack = await startStack({ commands: testCommands, env: { MANAGE_AUDITOR_GROUPS: 'auditors' } });
  alice = await stack.token({ sub: 'alice' });
});
after(() => stack.close());

const post = (s: TestStack, token: string, command: string, body: unknown, key?: string) =>
  s.http({ path: `/__manage__/${command}`, token, body, ...(key ? { headers: { 'idempotency-key': key } } : {}) });

describe('idempotency keys', () => {
  it('two concurrent requests with one key run the command once', async () => {
    const body = { data: { label: 'concurrent', waitMs: 100 } };
    const [a, b] = await Promise.all([post(stack, alice, 'touch', body, 'key-1'), post(stack, alice, 'touch', body, 'key-1')]);
    assert.equal(count('concurrent'), 1);
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, [200, 409]);
    const conflict = a.status === 409 ? a : b;
    assert.equal(conflict.body.error.code, 'Conflict');
    assert.match(conflict.body.error.message, /in progress/);
  });

  it('a retry after completion returns the first outcome, same execution id, without running', async () => {
    const body = { data: { label: 'retried' } };
    const first = await post(stack, alice, 'touch', body, 'key-2');
    const second = await post(stack, alice, 'touch', body, 'key-2');
    assert.equal(first.status, 200);
    assert.deepEqual(second.body, first.body);
    assert.equal(count('retried'), 1);
    const record = await stack.audit.getExecution(first.body.executionId);
    assert.equal(record?.idempotencyKey, 'key-2');
  });

  it('a failure is remembered too: the retry gets it, the command does not run again', async () => {
    const first = await post(stack, alice, 'fail', { data: { message: 'once' } }, 'key-3');
    const second = await post(stack, alice, 'fail', { data: { message: 'once' } }, 'key-3');
    assert.equal(first.status, 500);
    assert.deepEqual(second.body, first.body);
    const list = await stack.http({ method: 'GET', path: '/__manage__/executions', token: alice, query: { command: 'fail', limit: '100' } });
    assert.equal(list.body.executions.filter((e: { idempotencyKey?: string }) => e.idempotencyKey === 'key-3').length, 1);
  });

  it('the same key with other arguments is a 409', async () => {
    await post(stack, alice, 'touch', { data: { label: 'a' } }, 'key-4');
    const other = await post(stack, alice, 'touch', { data: { label: 'b' } }, 'key-4');
    assert.equal(other.status, 409);
    assert.match(other.body.error.message, /other arguments/);
    assert.equal(count('b'), 0);
  });

  it('is scoped to actor and command', async () => {
    const bob = await stack.token({ sub: 'bob' });
    await post(stack, alice, 'touch', { data: { label: 'scoped' } }, 'key-5');
    await post(stack, bob, 'touch', { data: { label: 'scoped' } }, 'key-5');
    assert.equal(count('scoped'), 2);
  });

  it('expires after MANAGE_IDEMPOTENCY_TTL_SECONDS', async () => {
    const short = stack.withEnv({ MANAGE_IDEMPOTENCY_TTL_SECONDS: '1' });
    await post(short, alice, 'touch', { data: { label: 'ttl' } }, 'key-6');
    await post(short, alice, 'touch', { data: { label: 'ttl' } }, 'key-6');
    assert.equal(count('ttl'), 1);
    await sleep(1100);
    await post(short, alice, 'touch', { data: { label: 'ttl' } }, 'key-6');
    assert.equal(count('ttl'), 2);
  });

  it('direct invocations honour idempotencyKey', async () => {
    const event = { command: 'touch', data: { label: 'invoked' }, idempotencyKey: 'sfn-1', actor: 'sfn' };
    const first = await stack.invoke(event);
    const second = await stack.invoke(event);
    assert.equal(second.executionId, first.executionId);
    assert.equal(count('invoked'), 1);
  });

  it('refuses a malformed key', async () => {
    const response = await post(stack, alice, 'touch', { data: { label: 'x' } }, 'has space');
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'InvalidRequest');
  });
});

describe('exclusive commands', () => {
  it('ten concurrent runs: exactly one runs, nine get 409 naming the holder', async () => {
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(stack, alice, 'migrate', { data: { label: 'ten' } })));
    const ok = responses.filter((r) => r.status === 200);
    const conflicts = responses.filter((r) => r.status === 409);
    assert.equal(ok.length, 1);
    assert.equal(conflicts.length, 9);
    assert.equal(count('ten'), 1);
    for (const conflict of conflicts) {
      assert.equal(conflict.body.error.code, 'Conflict');
      assert.equal(conflict.body.error.holderExecutionId, ok[0]!.body.executionId);
    }
    // The lease is released after the run.
    assert.equal((await post(stack, alice, 'migrate', { data: { label: 'after' } })).status, 200);
  });

  it('config can make any command exclusive', async () => {
    const exclusive = stack.withEnv({ MANAGE_EXCLUSIVE: 'sleep' });
    const state = new DynamoStateStore({ tableName: stack.dynamo.stateTableName, region: 'us-east-1', endpoint: stack.dynamo.endpoint });
    const first = post(exclusive, alice, 'sleep', { data: { ms: 300 } });
    // Once the first run holds the lease, a second one is refused.
    for (let i = 0; i < 100 && !(await state.get('LEASE#sleep')); i++) await sleep(5);
    const second = await post(exclusive, alice, 'sleep', { data: { ms: 1 } });
    assert.equal(second.status, 409);
    assert.equal((await first).status, 200);
  });

  it("a crashed holder's lease expires, and a lease cannot be released by another", async () => {
    const state = new DynamoStateStore({ tableName: stack.dynamo.stateTableName, region: 'us-east-1', endpoint: stack.dynamo.endpoint });
    const leases = new CommandLeases(state, Date.now);
    // A holder that died mid-run: its lease stays until it expires.
    assert.equal(await leases.acquire('migrate', 'CRASHEDHOLDER00000000000000', 300), undefined);
    assert.equal(await leases.release('migrate', 'SOMEONEELSE0000000000000000'), false);
    const blocked = await post(stack, alice, 'migrate', { data: { label: 'blocked' } });
    assert.equal(blocked.status, 409);
    assert.equal(blocked.body.error.holderExecutionId, 'CRASHEDHOLDER00000000000000');
    await sleep(350);
    const freed = await post(stack, alice, 'migrate', { data: { label: 'freed' } });
    assert.equal(freed.status, 200);
    assert.equal(count('blocked'), 0);
  });
});

describe('two-person approval', () => {
  let approvals: TestStack;
  let lead: string;
  let otherLead: string;
  before(async () => {
    approvals = stack.withEnv({ MANAGE_APPROVAL: '{"touch":["leads"]}', MANAGE_APPROVAL_TTL_SECONDS: '60' });
    lead = await stack.token({ sub: 'lena', groups: ['leads'] });
    otherLead = await stack.token({ sub: 'omar', groups: ['leads'] });
  });

  const request = async (label: string, token = alice, s = approvals) => {
    const response = await post(s, token, 'touch', { data: { label, token: 'approval-secret-token' } });
    assert.equal(response.status, 202);
    assert.equal(response.body.status, 'awaiting_approval');
    assert.match(response.body.planDigest, /^[0-9a-f]{64}$/);
    return response.body as { executionId: string; planDigest: string };
  };
  const decide = (s: TestStack, token: string, id: string, verb: 'approve' | 'reject', body: unknown = {}) =>
    s.http({ path: `/__manage__/executions/${id}/${verb}`, token, body });

  it('an approved request runs with the requested arguments, and the audit names both people', async () => {
    const { executionId, planDigest } = await request('approved');
    assert.equal(count('approved'), 0);
    const response = await decide(approvals, lead, executionId, 'approve', { planDigest });
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'succeeded');
    assert.equal(response.body.executionId, executionId);
    assert.deepEqual(response.body.result, { label: 'approved' });
    assert.equal(count('approved'), 1);
    const record = await stack.audit.getExecution(executionId);
    assert.equal(record?.status, 'succeeded');
    assert.equal(record?.actor.kind === 'token' && record.actor.subject, 'alice');
    assert.equal(record?.decision?.decision, 'approved');
    assert.equal(record?.decision?.by.kind === 'token' && record.decision.by.subject, 'lena');
    assert.equal(record?.args.token, '[REDACTED]');
    // Decided once: a second approval is a conflict and nothing runs again.
    assert.equal((await decide(approvals, otherLead, executionId, 'approve', { planDigest })).status, 409);
    assert.equal(count('approved'), 1);
  });

  it('self-approval is refused, even for a member of the approver group', async () => {
    const { executionId, planDigest } = await request('self', lead);
    const response = await decide(approvals, lead, executionId, 'approve', { planDigest });
    assert.equal(response.status, 403);
    assert.equal(response.body.error.code, 'Forbidden');
    assert.match(response.body.error.message, /two-person/);
    assert.equal(count('self'), 0);
  });

  it('an approver outside the group is refused, and not even told the request exists', async () => {
    const { executionId, planDigest } = await request('wrong-group');
    const bob = await stack.token({ sub: 'bob', groups: ['ops'] });
    assert.equal((await decide(approvals, bob, executionId, 'approve', { planDigest })).status, 404);
    assert.equal(count('wrong-group'), 0);
  });

  it('a reviewed plan that differs is refused', async () => {
    const { executionId } = await request('digest');
    const response = await decide(approvals, lead, executionId, 'approve', { planDigest: 'f'.repeat(64) });
    assert.equal(response.status, 409);
    assert.equal(count('digest'), 0);
  });

  it('a rejected request never runs', async () => {
    const { executionId, planDigest } = await request('rejected');
    const response = await decide(approvals, lead, executionId, 'reject');
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'rejected');
    assert.equal((await decide(approvals, otherLead, executionId, 'approve', { planDigest })).status, 409);
    assert.equal(count('rejected'), 0);
    assert.equal((await stack.audit.getExecution(executionId))?.status, 'rejected');
  });

  it('an unapproved request expires', async () => {
    const quick = stack.withEnv({ MANAGE_APPROVAL: '{"touch":["leads"]}', MANAGE_APPROVAL_TTL_SECONDS: '1' });
    const { executionId, planDigest } = await request('expired', alice, quick);
    await sleep(1100);
    const response = await decide(quick, lead, executionId, 'approve', { planDigest });
    assert.equal(response.status, 409);
    assert.equal(count('expired'), 0);
    const shown = await quick.http({ method: 'GET', path: `/__manage__/executions/${executionId}`, token: alice });
    assert.equal(shown.body.status, 'expired');
  });

  it('the pending arguments stay out of the audit; unknown executions are 404', async () => {
    assert.equal((await decide(approvals, lead, '01ARZ3NDEKTSV4RRFFQ69G5FAV', 'approve', { planDigest: 'f'.repeat(64) })).status, 404);
    const { Items = [] } = await stack.dynamo.client.send(new ScanCommand({ TableName: stack.dynamo.tableName }));
    assert.ok(Items.length > 0);
    assert.ok(!JSON.stringify(Items).includes('approval-secret-token'));
  });
});

describe('tamper-evident audit', () => {
  /** Each test tampers with its own command's chain, in its own stack. */
  async function threeExecutionsInOneChain(label: string) {
    const s = await startStack({ commands: testCommands, env: { MANAGE_AUDITOR_GROUPS: 'auditors', MANAGE_AUDIT_HMAC_KEY: 'k'.repeat(32) } });
    const token = await s.token({ sub: 'alice' });
    // Three executions in one chain (a command's records spread over shards by execution id).
    const ids: string[] = [];
    let chain: string | undefined;
    for (let i = 0; ids.length < 3; i++) {
      const id = (await post(s, token, 'touch', { data: { label: `${label}-${i}` } })).body.executionId;
      chain ??= chainOf('touch', id);
      if (chainOf('touch', id) === chain) ids.push(id);
    }
    const auditor = await s.token({ sub: 'ann', groups: ['auditors'] });
    const verify = () => s.http({ method: 'GET', path: '/__manage__/audit/verify', token: auditor, query: { command: 'touch' } });
    const item = async (seq: number) =>
      (await s.dynamo.client.send(new GetItemCommand({ TableName: s.dynamo.tableName, Key: key(seq) }))).Item!;
    const key = (seq: number) => ({ pk: { S: `CHAIN#${chain}` }, sk: { S: String(seq).padStart(12, '0') } });
    return { s, ids, verify, item, key };
  }

  it('an intact chain verifies; only auditors may verify', async () => {
    const { s, verify } = await threeExecutionsInOneChain('intact');
    const report = await verify();
    assert.equal(report.status, 200);
    assert.equal(report.body.ok, true);
    assert.equal(report.body.keyed, true);
    assert.equal(report.body.chains.reduce((sum: number, c: { records: number }) => sum + c.records, 0), 2 * (await s.http({ method: 'GET', path: '/__manage__/executions', token: await s.token({ sub: 'alice' }), query: { command: 'touch', limit: '100' } })).body.executions.length);
    assert.ok(report.body.chains.some((c: { records: number }) => c.records === 6));
    const plain = await s.http({ method: 'GET', path: '/__manage__/audit/verify', token: await s.token() });
    assert.equal(plain.status, 403);
    await s.close();
  });

  it('detects an edited record, naming its execution', async () => {
    const { s, ids, verify, item } = await threeExecutionsInOneChain('edited');
    const attempt = await item(3); // the second execution's attempt
    const record = JSON.parse(attempt.record!.S!);
    record.actor.subject = 'mallory';
    await s.dynamo.client.send(new PutItemCommand({ TableName: s.dynamo.tableName, Item: { ...attempt, record: { S: JSON.stringify(record) } } }));
    const report = await verify();
    assert.equal(report.body.ok, false);
    assert.deepEqual(report.body.problems.map((p: { problem: string; seq: number; executionId: string }) => [p.problem, p.seq, p.executionId]), [['altered', 3, ids[1]]]);
    await s.close();
  });

  it('detects a deleted record', async () => {
    const { s, ids, verify, key } = await threeExecutionsInOneChain('deleted');
    await s.dynamo.client.send(new DeleteItemCommand({ TableName: s.dynamo.tableName, Key: key(4) }));
    const report = await verify();
    assert.equal(report.body.ok, false);
    const [problem] = report.body.problems;
    assert.equal(problem.problem, 'missing');
    assert.equal(problem.seq, 4);
    assert.equal(problem.executionId, ids[2]);
    await s.close();
  });

  it('detects a swapped pair', async () => {
    const { s, verify, item, key } = await threeExecutionsInOneChain('swapped');
    const [third, fourth] = [await item(3), await item(4)];
    await s.dynamo.client.send(new PutItemCommand({ TableName: s.dynamo.tableName, Item: { ...fourth, ...key(3) } }));
    await s.dynamo.client.send(new PutItemCommand({ TableName: s.dynamo.tableName, Item: { ...third, ...key(4) } }));
    const report = await verify();
    assert.equal(report.body.ok, false);
    assert.deepEqual(report.body.problems.map((p: { problem: string; seq: number }) => [p.problem, p.seq]), [['reordered', 3], ['reordered', 4]]);
    await s.close();
  });
});

describe('rails under partial failure', () => {
  it('a command that throws a non-Error value is a CommandFailed, and a retry does not run it again', async () => {
    let runs = 0;
    const weird = stack.withEnv(
      {},
      {
        commands: {
          ...commandLoaders,
          // In place of `fail`, so that the configuration knows the name.
          fail: async () => ({
            default: defineCommand({
              description: 'Throws a value String() cannot convert (test only).',
              args: Type.Object({}),
              run() {
                runs++;
                throw Object.create(null);
              },
            }),
          }),
        },
      },
    );
    const first = await post(weird, alice, 'fail', {}, 'odd-key');
    assert.equal(first.status, 500);
    assert.equal(first.body.error.code, 'CommandFailed');
    assert.match(first.body.error.executionId, /^[0-9A-Z]{26}$/);
    const second = await post(weird, alice, 'fail', {}, 'odd-key');
    assert.deepEqual(second.body, first.body);
    assert.equal(runs, 1);
  });

  it('when remembering the outcome fails, a retry still gets the first outcome from the audit', async () => {
    const state = new DynamoStateStore({ tableName: stack.dynamo.stateTableName, region: 'us-east-1', endpoint: stack.dynamo.endpoint });
    let failReplace = true;
    const forgetful = stack.withEnv({}, {
      state: {
        create: (item) => state.create(item),
        get: (pk) => state.get(pk),
        delete: (pk, owner, options) => state.delete(pk, owner, options),
        replace: async (item) => {
          if (failReplace) throw new Error('state store hiccup');
          return state.replace(item);
        },
      },
    });
    const first = await post(forgetful, alice, 'touch', { data: { label: 'forgetful' } }, 'forgetful-key');
    assert.equal(first.status, 200);
    failReplace = false;
    const retry = await post(forgetful, alice, 'touch', { data: { label: 'forgetful' } }, 'forgetful-key');
    assert.equal(retry.status, 200);
    assert.equal(retry.body.executionId, first.body.executionId);
    assert.deepEqual(retry.body.result, first.body.result);
    assert.equal(count('forgetful'), 1);
  });

  it('an approval whose decision cannot be recorded can be decided again', async () => {
    const approvals = stack.withEnv({ MANAGE_APPROVAL: '{"touch":["leads"]}' });
    const lead = await stack.token({ sub: 'lena', groups: ['leads'] });
    const requested = await post(approvals, alice, 'touch', { data: { label: 'redecided' } });
    const id = requested.body.executionId;
    const failingDecisions = stack.withEnv({ MANAGE_APPROVAL: '{"touch":["leads"]}' }, {
      audit: {
        append: async (entry) => {
          if (entry.kind === 'decision') throw new Error('audit down');
          return stack.audit.append(entry);
        },
        getExecution: (executionId) => stack.audit.getExecution(executionId),
        listExecutions: (query) => stack.audit.listExecutions(query),
        readChain: (chain, options) => stack.audit.readChain(chain, options),
      },
    });
    const body = { planDigest: requested.body.planDigest };
    const refused = await failingDecisions.http({ path: `/__manage__/executions/${id}/approve`, token: lead, body });
    assert.equal(refused.status, 503);
    assert.equal(count('redecided'), 0);
    const approved = await approvals.http({ path: `/__manage__/executions/${id}/approve`, token: lead, body });
    assert.equal(approved.status, 200);
    assert.equal(count('redecided'), 1);
  });

  it('an approved command too long for the HTTP window goes to a worker: 202', async () => {
    const launched: string[] = [];
    const approvals = stack.withEnv(
      { MANAGE_APPROVAL: '{"sleep":["leads"]}', MANAGE_HTTP_TIME_LIMIT_MS: '1000' },
      { launcher: { launch: async (event) => void launched.push(event.mmWorker.executionId) } },
    );
    const lead = await stack.token({ sub: 'lena', groups: ['leads'] });
    const requested = await post(approvals, alice, 'sleep', { data: { ms: 10 } });
    const id = requested.body.executionId;
    const approved = await approvals.http({ path: `/__manage__/executions/${id}/approve`, token: lead, body: { planDigest: requested.body.planDigest } });
    assert.equal(approved.status, 202);
    assert.equal(approved.body.status, 'accepted');
    assert.equal(approved.headers.location, `/__manage__/executions/${id}`);
    assert.deepEqual(launched, [id]);
    await approvals.handler({ mmWorker: { executionId: id } }, { getRemainingTimeInMillis: () => 60_000 } as never);
    assert.equal((await stack.audit.getExecution(id))?.status, 'succeeded');
  });

  it('the HTTP window counts the time spent before the run, so the 504 still comes in time', async () => {
    const state = new DynamoStateStore({ tableName: stack.dynamo.stateTableName, region: 'us-east-1', endpoint: stack.dynamo.endpoint });
    const slowClaims = stack.withEnv({ MANAGE_HTTP_TIME_LIMIT_MS: '1000' }, {
      state: {
        create: async (item) => {
          await sleep(700);
          return state.create(item);
        },
        get: (pk) => state.get(pk),
        delete: (pk, owner, options) => state.delete(pk, owner, options),
        replace: (item) => state.replace(item),
      },
    });
    const started = Date.now();
    const response = await post(slowClaims, alice, 'sleep', { data: { ms: 5000 } }, 'slow-claim');
    assert.equal(response.status, 504);
    assert.ok(Date.now() - started < 1800, `answered after ${Date.now() - started} ms`);
  });
});
