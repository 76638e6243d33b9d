/**
 * The example state machine (statemachines/maintenance.asl.json), exactly as
 * deployed, run locally by aws-local-stepfunctions with its Lambda tasks routed
 * to the real `manage` handler over a real (dynalite) audit table: success, a
 * retried AuditUnavailable, a Lambda service error after the command ran (the
 * idempotency key makes the retry safe), a caught CommandFailed and a caught
 * CommandTimedOut.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { commandLoaders } from '../../example/commands/index.js';
import { defineCommand } from '../../src/command.js';
import { invokeDefaults } from '../../src/handler/invoke.js';
import type { AuditEntry, AuditStore, ExecutionRecord } from '../../src/stores/audit/store.js';
import { startStack, type TestStack } from '../support/stack.js';
import { StateMachine, collectEvents, executionContext, lambdaInvokeRoute, loadDefinition, type LambdaInvokeRouteOptions } from './local-sfn.js';

const definition = loadDefinition('maintenance.asl.json');
const TASKS = ['AnnounceMaintenance', 'WaitForDrain'] as const;
const PLACEHOLDER = '${ManageFunctionArn}';
/** Retry waits in the test (the file's own back-off is asserted below and in asl.test.ts). */
const FAST_RETRIES = Object.fromEntries(TASKS.map((task) => [task, 1]));

let stack: TestStack;

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stack?.close();
});

interface RunOptions extends LambdaInvokeRouteOptions {
  handler?: TestStack['handler'];
}

/** One execution of the state machine; never throws, resolves with its outcome. */
async function runMaintenance(input: Record<string, string | number>, options: RunOptions = {}) {
  const { route, invocations } = lambdaInvokeRoute(options.handler ?? stack.handler, { functionName: PLACEHOLDER, ...options });
  const execution = executionContext();
  const machine = new StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } });
  const started = Date.now();
  const run = machine.run(input, {
    context: execution.context,
    overrides: {
      taskResourceLocalHandlers: Object.fromEntries(TASKS.map((task) => [task, route])),
      retryIntervalOverrides: FAST_RETRIES,
    },
  });
  let output: any;
  let error: any;
  try {
    output = await run.result;
  } catch (caught) {
    error = caught;
  }
  const events = await collectEvents(run.eventLogs);
  return { execution, output, error, events, invocations, elapsedMs: Date.now() - started };
}

/** The audit's view of everything this state machine execution ran, oldest first. */
async function auditedRuns(executionArn: string): Promise<ExecutionRecord[]> {
  const page = await stack.audit.listExecutions({ actorKey: `invoke ${executionArn}`, limit: 20 });
  return [...page.executions].reverse();
}

function eventsOf(events: any[], type: string, state?: string) {
  return events.filter((event) => event.type === type && (state === undefined || event.state?.name === state));
}

describe('statemachines/maintenance.asl.json, run locally against the manage handler', { timeout: 20_000 }, () => {
  it('runs both commands in sequence, as the execution, and returns their results', { timeout: 10_000 }, async () => {
    const run = await runMaintenance({ message: 'maintenance window starts', drainMs: 25 });
    assert.equal(run.error, undefined, run.error?.cause?.message ?? run.error?.message);

    assert.equal(run.invocations.length, 2);
    const [announce, drain] = run.invocations;
    assert.deepEqual(announce!.event, {
      command: 'echo',
      data: { message: 'maintenance window starts' },
      actor: run.execution.id,
      idempotencyKey: `${run.execution.name}-announce`,
    });
    assert.deepEqual(drain!.event, {
      command: 'sleep',
      data: { ms: 25 },
      actor: run.execution.id,
      idempotencyKey: `${run.execution.name}-drain`,
    });

    // The workflow's output: its input, plus what each step returned.
    assert.equal(run.output.message, 'maintenance window starts');
    assert.equal(run.output.drainMs, 25);
    assert.deepEqual(run.output.steps.announce.result, { message: 'maintenance window starts' });
    assert.equal(run.output.steps.announce.status, 'succeeded');
    assert.equal(run.output.steps.announce.executionId, announce!.result.executionId);
    assert.deepEqual(run.output.steps.drain.result, { sleptMs: 25 });
    assert.equal(run.output.steps.drain.status, 'succeeded');
    assert.ok(run.output.steps.drain.durationMs >= 25);
    assert.equal(run.output.failure, undefined);
    assert.equal(eventsOf(run.events, 'StateRetried').length, 0);

    // One audited run per step, recorded with the execution ARN as actor.
    const records = await auditedRuns(run.execution.id);
    assert.deepEqual(
      records.map((record) => [record.command, record.status, record.executionId]),
      [
        ['echo', 'succeeded', run.output.steps.announce.executionId],
        ['sleep', 'succeeded', run.output.steps.drain.executionId],
      ],
    );
    for (const record of records) {
      assert.deepEqual(record.actor, { kind: 'invoke', name: run.execution.id });
      assert.equal(record.source.channel, 'invoke');
      assert.ok(record.outcomeRecorded);
    }
    assert.equal(records[0]!.idempotencyKey, `${run.execution.name}-announce`);
  });

  it('retries AuditUnavailable with back-off: the command runs once the audit can be written', { timeout: 10_000 }, async () => {
    // The file's own back-off (the test shortens the waits with retryIntervalOverrides).
    const retrier = definition.States.AnnounceMaintenance.Retry.find((r: any) => r.ErrorEquals.includes('AuditUnavailable'));
    assert.ok(retrier.IntervalSeconds >= 1 && retrier.BackoffRate > 1 && retrier.MaxAttempts >= 3);

    const failures = 2;
    const audit = failingAudit(stack.audit, failures);
    const flaky = stack.withEnv({}, { audit });
    const run = await runMaintenance({ message: 'after an audit outage', drainMs: 1 }, { handler: flaky.handler });
    assert.equal(run.error, undefined, run.error?.cause?.message ?? run.error?.message);

    // Two refused attempts of step 1, then step 1 and step 2 run.
    assert.equal(audit.failed, failures);
    assert.deepEqual(
      run.invocations.map((invocation) => [invocation.event.command, invocation.error?.errorType ?? 'ok']),
      [
        ['echo', 'AuditUnavailable'],
        ['echo', 'AuditUnavailable'],
        ['echo', 'ok'],
        ['sleep', 'ok'],
      ],
    );
    const retried = eventsOf(run.events, 'StateRetried', 'AnnounceMaintenance');
    assert.deepEqual(
      retried.map((event) => [event.retry.retrier.ErrorEquals, event.retry.attempt]),
      [
        [['AuditUnavailable'], 1],
        [['AuditUnavailable'], 2],
      ],
    );
    assert.deepEqual(run.output.steps.announce.result, { message: 'after an audit outage' });

    // A refused attempt runs nothing and leaves no record; the retry (same idempotency key) ran once.
    const records = await auditedRuns(run.execution.id);
    assert.deepEqual(
      records.map((record) => [record.command, record.status]),
      [
        ['echo', 'succeeded'],
        ['sleep', 'succeeded'],
      ],
    );
  });

  it('fails after the AuditUnavailable retries are used up', { timeout: 10_000 }, async () => {
    const audit = failingAudit(stack.audit, Number.POSITIVE_INFINITY);
    const run = await runMaintenance({ message: 'audit down', drainMs: 1 }, { handler: stack.withEnv({}, { audit }).handler });
    assert.equal(run.error?.name, 'ExecutionError');
    assert.equal(run.error.cause.name, 'AuditUnavailable');
    const retrier = definition.States.AnnounceMaintenance.Retry.find((r: any) => r.ErrorEquals.includes('AuditUnavailable'));
    assert.equal(run.invocations.length, 1 + retrier.MaxAttempts);
    assert.equal(eventsOf(run.events, 'StateEntered', 'MaintenanceFailed').length, 0, 'not a command failure');
    assert.deepEqual(await auditedRuns(run.execution.id), []);
  });

  it('a Lambda service error after the command ran is retried with the same idempotency key: it runs once', { timeout: 10_000 }, async () => {
    const run = await runMaintenance(
      { message: 'response lost once', drainMs: 1 },
      {
        serviceFault: (event, attempt) =>
          event.command === 'echo' && attempt === 1 ? { when: 'after', name: 'Lambda.ServiceException' } : undefined,
      },
    );
    assert.equal(run.error, undefined, run.error?.cause?.message ?? run.error?.message);
    const echoes = run.invocations.filter((invocation) => invocation.event.command === 'echo');
    assert.equal(echoes.length, 2);
    assert.equal(echoes[0]!.event.idempotencyKey, echoes[1]!.event.idempotencyKey);
    // The retry replays the first outcome instead of running echo again.
    assert.equal(echoes[1]!.result.executionId, echoes[0]!.result.executionId);
    assert.equal(run.output.steps.announce.executionId, echoes[0]!.result.executionId);
    assert.deepEqual(
      eventsOf(run.events, 'StateRetried', 'AnnounceMaintenance').map((event) => event.retry.retrier.ErrorEquals[0]),
      ['Lambda.ServiceException'],
    );
    const records = await auditedRuns(run.execution.id);
    assert.deepEqual(
      records.map((record) => record.command),
      ['echo', 'sleep'],
    );
  });

  it('catches CommandFailed into the failure state, with the error name and the command message', { timeout: 10_000 }, async () => {
    const failingDrain = defineCommand({
      description: 'A drain that finds connections still open.',
      args: Type.Object({ ms: Type.Integer({ minimum: 0 }) }),
      run() {
        throw new Error('drain incomplete: 3 connections still open');
      },
    });
    const broken = stack.withEnv({}, { commands: { ...commandLoaders, sleep: async () => ({ default: failingDrain }) } });
    const run = await runMaintenance({ message: 'maintenance', drainMs: 5 }, { handler: broken.handler });

    assert.equal(run.error?.name, 'ExecutionError');
    assert.equal(run.error.cause.name, 'CommandFailed');
    const cause = JSON.parse(run.error.cause.message);
    assert.equal(cause.errorType, 'CommandFailed');
    assert.equal(cause.errorMessage, 'drain incomplete: 3 connections still open');
    // No code frames reach the state machine; the execution id does, to find the audit record.
    assert.ok(!/\.(ts|js|mjs):\d+/.test(JSON.stringify(cause.trace)), 'no stack frames reach the state machine');
    assert.match(JSON.stringify(cause.trace), /at execution [0-9A-Z]{26}/);

    // Step 1 ran; step 2 failed and was caught (not retried) into MaintenanceFailed.
    assert.deepEqual(
      run.invocations.map((invocation) => [invocation.event.command, invocation.error?.errorType ?? 'ok']),
      [
        ['echo', 'ok'],
        ['sleep', 'CommandFailed'],
      ],
    );
    assert.equal(eventsOf(run.events, 'StateRetried').length, 0);
    assert.equal(eventsOf(run.events, 'StateCaught', 'WaitForDrain').length, 1);
    const [failed] = eventsOf(run.events, 'StateEntered', 'MaintenanceFailed');
    assert.equal(failed.state.input.failure.Error, 'CommandFailed');
    assert.ok(failed.state.input.steps.announce.executionId, 'step 1 result kept beside the failure');

    const records = await auditedRuns(run.execution.id);
    assert.deepEqual(
      records.map((record) => [record.command, record.status, record.error?.code]),
      [
        ['echo', 'succeeded', undefined],
        ['sleep', 'failed', 'CommandFailed'],
      ],
    );
  });

  it('catches CommandTimedOut when the command outlives the Lambda', { timeout: 10_000 }, async () => {
    // A Lambda with little time left: the handler keeps its response margin to record the outcome, so sleep gets ~300 ms.
    const remainingMs = invokeDefaults.responseMarginMs + 300;
    const run = await runMaintenance(
      { message: 'maintenance', drainMs: 60_000 },
      { remainingMs: (event) => (event.command === 'sleep' ? remainingMs : 900_000) },
    );
    assert.ok(run.elapsedMs < 5_000, `took ${run.elapsedMs} ms`);
    assert.equal(run.error?.name, 'ExecutionError');
    assert.equal(run.error.cause.name, 'CommandTimedOut');
    assert.equal(JSON.parse(run.error.cause.message).errorType, 'CommandTimedOut');
    assert.equal(eventsOf(run.events, 'StateRetried').length, 0);
    assert.equal(eventsOf(run.events, 'StateCaught', 'WaitForDrain').length, 1);
    assert.equal(eventsOf(run.events, 'StateEntered', 'MaintenanceFailed')[0].state.input.failure.Error, 'CommandTimedOut');

    const records = await auditedRuns(run.execution.id);
    assert.deepEqual(
      records.map((record) => [record.command, record.status, record.error?.code]),
      [
        ['echo', 'succeeded', undefined],
        ['sleep', 'timed_out', 'CommandTimedOut'],
      ],
    );
    assert.ok(records[1]!.durationMs! < remainingMs, `sleep ran ${records[1]!.durationMs} ms`);
  });
});

/** The real store, but its first `failures` appends fail as an unreachable table would. */
function failingAudit(store: AuditStore, failures: number): AuditStore & { failed: number } {
  const wrapper = {
    failed: 0,
    async append(entry: AuditEntry) {
      if (wrapper.failed < failures) {
        wrapper.failed += 1;
        throw Object.assign(new Error('connect ECONNREFUSED (simulated audit outage)'), { name: 'TimeoutError' });
      }
      return store.append(entry);
    },
    getExecution: (executionId: string) => store.getExecution(executionId),
    listExecutions: (query: Parameters<AuditStore['listExecutions']>[0]) => store.listExecutions(query),
    readChain: (command: string, options?: { since?: string }) => store.readChain(command, options),
  };
  return wrapper;
}
