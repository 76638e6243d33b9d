/**
 * Long-running commands: `Prefer: respond-async`, the worker invocation, stale
 * executions, and Step Functions task tokens reported to a local fake.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from '@sinclair/typebox';
import { defineCommand } from '../../src/command.js';
import { LambdaWorkerLauncher, StepFunctionsTaskReporter, type WorkerEvent, type WorkerLauncher } from '../../src/handler/worker.js';
import { lambdaContext, startStack, type TestStack } from '../support/stack.js';
import { CommandLeases } from '../../src/pipeline/rails.js';
import { DynamoStateStore } from '../../src/stores/state/dynamodb.js';

const runs: string[] = [];
/** A run labelled `gated` waits here until the test opens the gate: no race with a fixed delay. */
let openGate: () => void = () => {};
const gate = () => new Promise<void>((resolve) => (openGate = resolve));
const testCommands = {
  touch: async () => ({
    default: defineCommand({
      description: 'Records that it ran (test only).',
      args: Type.Object({ label: Type.String(), waitMs: Type.Optional(Type.Integer({ minimum: 0 })) }),
      timeLimitMs: 120_000,
      async run({ label, waitMs }) {
        const opened = label === 'gated' ? gate() : undefined;
        runs.push(label);
        if (opened) await opened;
        if (waitMs) await sleep(waitMs);
        return { label };
      },
    }),
  }),
};

/** A launcher that only queues: the test decides when (and whether) the worker runs. */
class QueuedLauncher implements WorkerLauncher {
  readonly queued: WorkerEvent[] = [];
  async launch(event: WorkerEvent) {
    this.queued.push(event);
  }
}

let stack: TestStack;
let launcher: QueuedLauncher;
let token: string;
before(async () => {
  launcher = new QueuedLauncher();
  stack = await startStack({ commands: testCommands, handlerOptions: { launcher } });
  token = await stack.token();
});
after(() => stack.close());

const show = (s: TestStack, id: string) => s.http({ method: 'GET', path: `/__manage__/executions/${id}`, token });
const runWorker = (s: TestStack, event: WorkerEvent, remainingMs = 900_000) => s.handler(event, lambdaContext(remainingMs));

describe('Prefer: respond-async', () => {
  it('answers 202 with the execution id and Location, then accepted → running → succeeded', async () => {
    const response = await stack.http({
      path: '/__manage__/touch',
      token,
      headers: { prefer: 'respond-async' },
      body: { data: { label: 'gated' } },
    });
    assert.equal(response.status, 202);
    assert.equal(response.body.status, 'accepted');
    const id = response.body.executionId;
    assert.equal(response.headers.location, `/__manage__/executions/${id}`);
    assert.equal(runs.filter((r) => r === 'gated').length, 0);
    assert.equal((await show(stack, id)).body.status, 'accepted');

    const event = launcher.queued.find((e) => e.mmWorker.executionId === id)!;
    const worker = runWorker(stack, event);
    // The command is inside run() (so its start record is written) and waits for the gate.
    while (!runs.includes('gated')) await sleep(10);
    assert.equal((await show(stack, id)).body.status, 'running');
    openGate();
    await worker;
    const done = (await show(stack, id)).body;
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.result, { label: 'gated' });
    assert.equal(runs.filter((r) => r === 'gated').length, 1);
  });

  it('an exclusive command that is already running is refused at once (409), not accepted', async () => {
    const exclusive = stack.withEnv({ MANAGE_EXCLUSIVE: 'touch' });
    const state = new DynamoStateStore({ tableName: stack.dynamo.stateTableName, region: 'us-east-1', endpoint: stack.dynamo.endpoint });
    await new CommandLeases(state, Date.now).acquire('touch', 'HOLDER0000000000000000000A', 5000);
    const response = await exclusive.http({ path: '/__manage__/touch', token, headers: { prefer: 'respond-async' }, body: { data: { label: 'busy' } } });
    assert.equal(response.status, 409);
    assert.equal(response.body.error.holderExecutionId, 'HOLDER0000000000000000000A');
    await new CommandLeases(state, Date.now).release('touch', 'HOLDER0000000000000000000A');
  });

  it('a duplicate worker event runs nothing twice', async () => {
    const response = await stack.http({ path: '/__manage__/touch', token, headers: { prefer: 'respond-async' }, body: { data: { label: 'dup' } } });
    const event = launcher.queued.find((e) => e.mmWorker.executionId === response.body.executionId)!;
    await Promise.all([runWorker(stack, event), runWorker(stack, event)]);
    await runWorker(stack, event);
    assert.equal(runs.filter((r) => r === 'dup').length, 1);
  });

  it('a worker that never starts leaves a record that reads as timed_out after the limit', async () => {
    const response = await stack.http({ path: '/__manage__/touch', token, headers: { prefer: 'respond-async' }, body: { data: { label: 'never' } } });
    const id = response.body.executionId;
    assert.equal((await show(stack, id)).body.status, 'accepted');
    const later = stack.withEnv({}, { now: () => Date.now() + 120_000 + 61_000 });
    const shown = await show(later, id);
    assert.equal(shown.body.status, 'timed_out');
    assert.equal(shown.body.outcomeRecorded, false);
  });

  it('a worker cut short by its Lambda time left records timed_out', async () => {
    const response = await stack.http({ path: '/__manage__/touch', token, headers: { prefer: 'respond-async' }, body: { data: { label: 'dies', waitMs: 2000 } } });
    const id = response.body.executionId;
    const event = launcher.queued.find((e) => e.mmWorker.executionId === id)!;
    // The worker's Lambda has 1.6 s: its command is cut at 0.1 s and the outcome says so.
    await runWorker(stack, event, 1600);
    assert.equal((await show(stack, id)).body.status, 'timed_out');
    assert.equal((await show(stack, id)).body.outcomeRecorded, true);
  });

  it('a forged worker event cannot skip an approval', async () => {
    const approvals = stack.withEnv({ MANAGE_APPROVAL: '{"touch":["leads"]}' });
    const response = await approvals.http({ path: '/__manage__/touch', token, body: { data: { label: 'needs-approval' } } });
    assert.equal(response.status, 202);
    await runWorker(approvals, { mmWorker: { executionId: response.body.executionId } });
    assert.equal(runs.filter((r) => r === 'needs-approval').length, 0);
    assert.equal((await show(approvals, response.body.executionId)).body.status, 'awaiting_approval');
  });

  it('a worker that cannot be started is a CommandFailed, recorded', async () => {
    const broken = stack.withEnv({}, { launcher: { launch: async () => Promise.reject(new Error('lambda down')) } });
    const response = await broken.http({ path: '/__manage__/touch', token, headers: { prefer: 'respond-async' }, body: { data: { label: 'unlaunched' } } });
    assert.equal(response.status, 500);
    assert.equal(response.body.error.code, 'CommandFailed');
    assert.equal((await show(stack, response.body.error.executionId)).body.status, 'failed');
    assert.equal(runs.filter((r) => r === 'unlaunched').length, 0);
  });

  it('the real launcher sends an Event invocation of this function, signed', async () => {
    const requests: { url: string; headers: IncomingMessage['headers']; body: string }[] = [];
    const lambda = await fakeServer(async (req, body) => {
      requests.push({ url: req.url!, headers: req.headers, body });
      return { status: 202, body: '' };
    });
    const launcherForReal = new LambdaWorkerLauncher({ functionName: 'middle-management-dev-manage', region: 'us-east-1', endpoint: lambda.url });
    const real = stack.withEnv({}, { launcher: launcherForReal });
    const response = await real.http({ path: '/__manage__/noop', token, headers: { prefer: 'respond-async' } });
    assert.equal(response.status, 202);
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.url, '/2015-03-31/functions/middle-management-dev-manage/invocations');
    assert.equal(requests[0]!.headers['x-amz-invocation-type'], 'Event');
    assert.match(String(requests[0]!.headers.authorization), /^AWS4-HMAC-SHA256 Credential=.*\/lambda\/aws4_request/);
    assert.deepEqual(JSON.parse(requests[0]!.body), { mmWorker: { executionId: response.body.executionId } });
    await lambda.close();
  });
});

describe('Step Functions task tokens', () => {
  let sfn: Awaited<ReturnType<typeof fakeServer>>;
  let calls: { target: string; body: any }[];
  let tokenStack: TestStack;
  before(async () => {
    calls = [];
    sfn = await fakeServer(async (req, body) => {
      calls.push({ target: String(req.headers['x-amz-target']), body: JSON.parse(body) });
      return { status: 200, body: '{}' };
    });
    // Event invocations run the worker soon after, as Lambda would.
    const inProcess: WorkerLauncher = { launch: async (event) => void setImmediate(() => void tokenStack.handler(event, lambdaContext())) };
    tokenStack = stack.withEnv({}, { launcher: inProcess, reporter: new StepFunctionsTaskReporter({ region: 'us-east-1', endpoint: sfn.url }) });
  });
  after(() => sfn.close());

  const waitForCalls = async (n: number) => {
    for (let i = 0; i < 100 && calls.length < n; i++) await sleep(20);
  };

  it('answers at once, runs in a worker and reports SendTaskSuccess with the outcome', async () => {
    const answer = await tokenStack.invoke({ command: 'echo', data: { message: 'cb' }, actor: 'exec-1', taskToken: 'token-success' });
    assert.equal(answer.status, 'accepted');
    await waitForCalls(1);
    assert.equal(calls[0]!.target, 'AWSStepFunctions.SendTaskSuccess');
    assert.equal(calls[0]!.body.taskToken, 'token-success');
    const output = JSON.parse(calls[0]!.body.output);
    assert.equal(output.executionId, answer.executionId);
    assert.equal(output.status, 'succeeded');
    assert.deepEqual(output.result, { message: 'cb' });
  });

  it('reports SendTaskFailure with the contract error name and message', async () => {
    calls.length = 0;
    await tokenStack.invoke({ command: 'fail', data: { message: 'broken step' }, taskToken: 'token-failure' });
    await waitForCalls(1);
    assert.deepEqual(calls[0], { target: 'AWSStepFunctions.SendTaskFailure', body: { taskToken: 'token-failure', error: 'CommandFailed', cause: 'broken step' } });
  });

  it('a retried task (same idempotency key, new token) is told the outcome, and nothing runs twice', async () => {
    calls.length = 0;
    const event = { command: 'touch', data: { label: 'retried-task' }, idempotencyKey: 'sfn-exec-1-step', actor: 'exec-1' };
    const first = await tokenStack.invoke({ ...event, taskToken: 'token-first' });
    await waitForCalls(1);
    // Step Functions lost the first answer and retried the task with a new token after the run ended.
    const second = await tokenStack.invoke({ ...event, taskToken: 'token-second' });
    assert.equal(second.executionId, first.executionId);
    await waitForCalls(2);
    assert.deepEqual(calls.map((c) => [c.target, c.body.taskToken]), [
      ['AWSStepFunctions.SendTaskSuccess', 'token-first'],
      ['AWSStepFunctions.SendTaskSuccess', 'token-second'],
    ]);
    assert.equal(JSON.parse(calls[1]!.body.output).executionId, first.executionId);
    assert.equal(runs.filter((r) => r === 'retried-task').length, 1);
  });

  it('a token handed over before the worker ran is the one reported', async () => {
    calls.length = 0;
    const queued = new QueuedLauncher();
    const slow = stack.withEnv({}, { launcher: queued, reporter: new StepFunctionsTaskReporter({ region: 'us-east-1', endpoint: sfn.url }) });
    const event = { command: 'touch', data: { label: 'handover' }, idempotencyKey: 'sfn-exec-2-step' };
    const first = await slow.invoke({ ...event, taskToken: 'token-old' });
    await slow.invoke({ ...event, taskToken: 'token-new' });
    await runWorker(slow, queued.queued.find((e) => e.mmWorker.executionId === first.executionId)!);
    await waitForCalls(1);
    assert.deepEqual(calls.map((c) => c.body.taskToken), ['token-new']);
    assert.equal(runs.filter((r) => r === 'handover').length, 1);
  });

  it('refusals come back at once as the invocation error, with nothing reported later', async () => {
    calls.length = 0;
    await assert.rejects(tokenStack.invoke({ command: 'nope', taskToken: 't' }), { name: 'CommandNotAllowed' });
    await assert.rejects(tokenStack.invoke({ command: 'echo', data: {}, taskToken: 't' }), { name: 'InvalidArguments' });
    await sleep(50);
    assert.equal(calls.length, 0);
  });
});

async function fakeServer(answer: (req: IncomingMessage, body: string) => Promise<{ status: number; body: string }>) {
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const { status, body } = await answer(req, Buffer.concat(chunks).toString('utf8'));
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
