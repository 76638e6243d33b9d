/**
 * Issue 11, phase 2: approvals and leases (items 6–9), reproduced through the
 * public entry points (HTTP events, direct invocation) over a DynamoDB that
 * enforces the real limits, with real signed tokens. Each test failed on the
 * code before the fix. `mm approve` is covered in test/cli/async.test.ts and
 * test/cli/flows.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from '@sinclair/typebox';
import type { Fetcher } from 'aws-jwt-verify/https';
import { defineCommand, type CommandLoader } from '../../src/command.js';
import { DynamoStateStore } from '../../src/stores/state/dynamodb.js';
import type { TaskReporter, WorkerEvent, WorkerLauncher } from '../../src/handler/worker.js';
import { startStack, type TestStack } from '../support/stack.js';

const POOL = 'us-east-1_ApprovalPool';
const COGNITO_ISSUER = `https://cognito-idp.us-east-1.amazonaws.com/${POOL}`;
const CLIENT_ID = 'approval-client';

const ran: string[] = [];
/** Opened by the test: until then `stubborn` goes on, whatever its abort signal says. */
let releaseStubborn: () => void = () => undefined;
const gate = new Promise<void>((resolve) => {
  releaseStubborn = resolve;
});
let stubbornRunning = 0;
let stubbornMostAtOnce = 0;

const commands: Record<string, CommandLoader> = {
  // Approvers declared by the command itself, not by MANAGE_APPROVAL.
  drop: async () => ({
    default: defineCommand({
      description: 'Drops a table (test only).',
      args: Type.Object({ table: Type.String(), password: Type.Optional(Type.String()) }),
      sensitive: ['password'],
      approvers: ['dba'],
      run: ({ table }) => {
        ran.push(`drop ${table}`);
        return { dropped: table };
      },
    }),
  }),
  stubborn: async () => ({
    default: defineCommand({
      description: 'Exclusive, and ignores its abort signal (test only).',
      args: Type.Object({ label: Type.String() }),
      exclusive: true,
      timeLimitMs: 150,
      async run({ label }) {
        ran.push(`stubborn ${label}`);
        stubbornRunning++;
        stubbornMostAtOnce = Math.max(stubbornMostAtOnce, stubbornRunning);
        try {
          await gate;
        } finally {
          stubbornRunning--;
        }
        return { label };
      },
    }),
  }),
};

class QueuedLauncher implements WorkerLauncher {
  readonly queued: WorkerEvent[] = [];
  async launch(event: WorkerEvent) {
    this.queued.push(event);
  }
}

class RecordingReporter implements TaskReporter {
  readonly calls: { token: string; outcome: 'succeed' | 'fail'; error?: string; cause?: string }[] = [];
  async succeed(token: string) {
    this.calls.push({ token, outcome: 'succeed' });
  }
  async fail(token: string, error: string, cause: string) {
    this.calls.push({ token, outcome: 'fail', error, cause });
  }
}

let stack: TestStack;
let alice: string;
let dana: string;
let eve: string;
const reporter = new RecordingReporter();

before(async () => {
  stack = await startStack({
    commands,
    env: { MANAGE_AUDITOR_GROUPS: 'auditors' },
    handlerOptions: { launcher: new QueuedLauncher(), reporter },
  });
  alice = await stack.token({ sub: 'alice', username: 'alice' });
  dana = await stack.token({ sub: 'dana', username: 'dana', groups: ['dba'] });
  eve = await stack.token({ sub: 'eve', username: 'eve' });
});
after(() => stack.close());

const get = (s: TestStack, token: string, id: string) => s.http({ method: 'GET', path: `/__manage__/executions/${id}`, token });
const decide = (s: TestStack, token: string, id: string, verb: 'approve' | 'reject', body: unknown = {}) =>
  s.http({ path: `/__manage__/executions/${id}/${verb}`, token, body });

async function requestDrop(table: string, token = alice, s = stack) {
  const response = await s.http({ path: '/__manage__/drop', token, body: { data: { table, password: 'hunter2-approval' } } });
  assert.equal(response.status, 202, response.raw);
  return response.body as { executionId: string; planDigest: string };
}

describe('6. approvers see what they approve; nobody else learns anything', () => {
  it("an approver who is not an auditor reads the request awaiting them (the command's own approvers), arguments redacted", async () => {
    const { executionId, planDigest } = await requestDrop('customers');
    const shown = await get(stack, dana, executionId);
    assert.equal(shown.status, 200, shown.raw);
    assert.equal(shown.body.command, 'drop');
    assert.equal(shown.body.status, 'awaiting_approval');
    assert.equal(shown.body.args.table, 'customers');
    assert.equal(shown.body.args.password, '[REDACTED]');
    assert.ok(!shown.raw.includes('hunter2-approval'));
    assert.equal(shown.body.planDigest, planDigest);
    assert.equal(shown.body.actor.subject, 'alice');
    // Not an approver, not the requester, not an auditor: as unknown as a missing id.
    assert.equal((await get(stack, eve, executionId)).status, 404);
    // After the decision the approver still reads what they decided.
    const approved = await decide(stack, dana, executionId, 'approve', { planDigest });
    assert.equal(approved.status, 200, approved.raw);
    assert.deepEqual(approved.body.result, { dropped: 'customers' });
    assert.equal((await get(stack, dana, executionId)).body.status, 'succeeded');
  });

  it('approving without the plan digest is refused with a 400 that says what to send', async () => {
    const { executionId } = await requestDrop('orders');
    for (const body of [{}, { planDigest: '' }]) {
      const response = await decide(stack, dana, executionId, 'approve', body);
      assert.equal(response.status, 400, response.raw);
      assert.equal(response.body.error.code, 'InvalidRequest');
      assert.match(response.body.error.message, /planDigest/);
    }
    assert.equal(ran.includes('drop orders'), false);
    // Rejecting needs no digest.
    assert.equal((await decide(stack, dana, executionId, 'reject')).status, 200);
  });

  it('a signed-in stranger gets the same answer for an unknown id, a request awaiting approval and an async run', async () => {
    const awaiting = await requestDrop('invoices');
    const accepted = await stack.http({ path: '/__manage__/noop', token: alice, headers: { prefer: 'respond-async' }, body: {} });
    assert.equal(accepted.status, 202, accepted.raw);
    const unknown = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    const answers = new Set<string>();
    for (const id of [unknown, awaiting.executionId, accepted.body.executionId]) {
      for (const verb of ['approve', 'reject'] as const) {
        const response = await decide(stack, eve, id, verb, { planDigest: awaiting.planDigest });
        answers.add(`${response.status} ${response.raw}`);
      }
      const read = await get(stack, eve, id);
      assert.equal(read.status, 404);
    }
    assert.deepEqual([...answers], [`404 ${JSON.stringify({ error: { code: 'NotFound', message: 'No such execution.' } })}`]);
    assert.equal(ran.includes('drop invoices'), false);
  });
});

describe('7. "another person": one person\'s other identity cannot approve their own request', () => {
  let both: TestStack;
  const cognitoToken = (claims: Record<string, unknown>) =>
    stack.issuer.sign({ iss: COGNITO_ISSUER, aud: undefined, token_use: 'access', client_id: CLIENT_ID, ...claims });

  before(() => {
    const fetcher: Fetcher = {
      async fetch(uri) {
        if (uri === `${COGNITO_ISSUER}/.well-known/jwks.json` || uri === `${stack.issuer.issuer}/.well-known/jwks.json`) return new TextEncoder().encode(JSON.stringify(stack.issuer.jwks)).buffer as ArrayBuffer;
        if (uri === `${stack.issuer.issuer}/.well-known/openid-configuration`) {
          return new TextEncoder().encode(JSON.stringify({ issuer: stack.issuer.issuer, jwks_uri: `${stack.issuer.issuer}/.well-known/jwks.json` })).buffer as ArrayBuffer;
        }
        throw new Error(`network disabled in tests: ${uri}`);
      },
    };
    // Cognito and an OIDC issuer both trusted: one person may hold an account at each.
    both = stack.withEnv({ MANAGE_COGNITO_USER_POOL_ID: POOL, MANAGE_COGNITO_CLIENT_ID: CLIENT_ID }, { jwksFetcher: fetcher });
  });

  it('the Cognito user ALICE (subject or username, any case) may not approve the OIDC user alice’s request; bob may', async () => {
    const requester = await stack.token({ sub: 'alice', username: 'alice' });
    const { executionId, planDigest } = await requestDrop('accounts', requester, both);
    const sameBySubject = await cognitoToken({ sub: 'ALICE', username: 'a-l', 'cognito:groups': ['dba'] });
    const sameByUsername = await cognitoToken({ sub: '5f0c1e2a-0000-4000-8000-000000000001', username: 'Alice', 'cognito:groups': ['dba'] });
    for (const token of [sameBySubject, sameByUsername]) {
      const response = await decide(both, token, executionId, 'approve', { planDigest });
      assert.equal(response.status, 403, response.raw);
      assert.match(response.body.error.message, /two-person/);
    }
    assert.equal(ran.includes('drop accounts'), false);
    const bob = await cognitoToken({ sub: '5f0c1e2a-0000-4000-8000-000000000002', username: 'bob', 'cognito:groups': ['dba'] });
    const approved = await decide(both, bob, executionId, 'approve', { planDigest });
    assert.equal(approved.status, 200, approved.raw);
    assert.ok(ran.includes('drop accounts'));
  });
});

describe('8. an approved request cannot be stranded', () => {
  it('a command taken off the allowlist since the request: the approval closes it with the reason and tells its task', async () => {
    // Requested by a Step Functions task (direct invocation with a task token).
    const requested = await stack.invoke({ command: 'drop', data: { table: 'ledger' }, actor: 'states:exec-1', taskToken: 'task-token-ledger' });
    assert.equal(requested.status, 'awaiting_approval');
    const id = requested.executionId as string;
    const allowList = stack.env.MANAGE_ALLOW_LIST!.split(',').filter((name) => name !== 'drop').join(',');
    const narrowed = stack.withEnv({ MANAGE_ALLOW_LIST: allowList });
    const auditor = await stack.token({ sub: 'audrey', groups: ['auditors'] });

    const approved = await decide(narrowed, dana, id, 'approve', { planDigest: requested.planDigest });
    assert.equal(approved.status, 403, approved.raw);
    assert.equal(approved.body.error.code, 'CommandNotAllowed');
    assert.match(approved.body.error.message, /no longer allowed/);
    assert.equal(approved.body.error.executionId, id);
    assert.equal(ran.includes('drop ledger'), false);
    // Closed with the reason, not left to read as `expired`; the task was told.
    const record = await get(narrowed, auditor, id);
    assert.equal(record.status, 200, record.raw);
    assert.equal(record.body.status, 'failed');
    assert.equal(record.body.error.code, 'CommandNotAllowed');
    assert.equal(record.body.decision.decision, 'approved');
    assert.deepEqual(
      reporter.calls.filter((call) => call.token === 'task-token-ledger').map(({ outcome, error }) => ({ outcome, error })),
      [{ outcome: 'fail', error: 'CommandNotAllowed' }],
    );
    // Decided: every later decision is a conflict, nowhere a run.
    const again = await decide(stack, dana, id, 'approve', { planDigest: requested.planDigest });
    assert.equal(again.status, 409, again.raw);
    assert.match(again.body.error.message, /failed/);
    assert.equal(ran.includes('drop ledger'), false);
  });
});

describe('8. the approver must still be one when approving', () => {
  it('a group no longer named as approvers cannot approve a request made while it was', async () => {
    const { executionId, planDigest } = await requestDrop('audit_log');
    // Since the request, the configuration names other approvers for the command.
    const moved = stack.withEnv({ MANAGE_APPROVAL: '{"drop":["leads"]}' });
    const refused = await decide(moved, dana, executionId, 'approve', { planDigest });
    assert.equal(refused.status, 403, refused.raw);
    assert.equal(refused.body.error.code, 'Forbidden');
    assert.equal(ran.includes('drop audit_log'), false);
    // Still awaiting: a current approver decides it.
    const lead = await stack.token({ sub: 'lena', groups: ['leads'] });
    assert.equal((await decide(moved, lead, executionId, 'approve', { planDigest })).status, 200);
    assert.ok(ran.includes('drop audit_log'));
  });
});

describe('9. an exclusive command never runs twice at once', () => {
  it('a command that ignores its abort signal keeps the lease until it really stops', async () => {
    const state = new DynamoStateStore({ tableName: stack.dynamo.stateTableName, region: 'us-east-1', endpoint: stack.dynamo.endpoint });
    const first = await stack.http({ path: '/__manage__/stubborn', token: alice, body: { data: { label: 'first' } } });
    assert.equal(first.status, 504, first.raw);
    assert.equal(stubbornRunning, 1, 'the first run goes on past its time limit');
    // While it goes on, a second run is refused: the lease is still held.
    const second = await stack.http({ path: '/__manage__/stubborn', token: alice, body: { data: { label: 'second' } } });
    assert.equal(second.status, 409, second.raw);
    assert.equal(second.body.error.holderExecutionId ?? second.body.error.executionId, first.body.error.executionId);
    const invoked = await stack.invoke({ command: 'stubborn', data: { label: 'invoked' } }).then(
      () => 'ran',
      (error: Error) => error.name,
    );
    assert.equal(invoked, 'Conflict');
    assert.equal(stubbornMostAtOnce, 1);
    // Once it really stops, the lease is released and the next run goes ahead.
    releaseStubborn();
    for (let i = 0; i < 200 && (await state.get('LEASE#stubborn')); i++) await sleep(10);
    assert.equal(await state.get('LEASE#stubborn'), undefined);
    const third = await stack.http({ path: '/__manage__/stubborn', token: alice, body: { data: { label: 'third' } } });
    assert.equal(third.status, 200, third.raw);
    assert.equal(stubbornMostAtOnce, 1);
    assert.deepEqual(ran.filter((label) => label.startsWith('stubborn')), ['stubborn first', 'stubborn third']);
  });
});
