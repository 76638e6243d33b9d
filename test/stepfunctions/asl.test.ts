/**
 * statemachines/maintenance.asl.json is valid Amazon States Language and keeps
 * the promises the README makes about it: every command runs through the
 * Lambda service integration, names the execution as actor, carries an
 * idempotency key, retries AuditUnavailable with back-off and catches
 * CommandFailed / CommandTimedOut into a failure state.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { loadDefinition } from './local-sfn.js';

// asl-validator is CommonJS (`module.exports = validator`).
const aslValidator = createRequire(import.meta.url)('asl-validator') as (
  definition: unknown,
  options?: { checkPaths?: boolean; checkArn?: boolean },
) => { isValid: boolean; errorsText: (separator?: string) => string };

const FILE = 'maintenance.asl.json';
/** The error names of CONTRACT §3. */
const CONTRACT_ERRORS = new Set([
  'InvalidRequest',
  'CommandNotAllowed',
  'InvalidArguments',
  'CommandFailed',
  'CommandTimedOut',
  'Conflict',
  'AuditUnavailable',
]);
const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];

const definition = loadDefinition(FILE);
const tasks = Object.entries(definition.States as Record<string, any>).filter(([, state]) => state.Type === 'Task');

describe(`statemachines/${FILE}`, { timeout: 10_000 }, () => {
  it('is valid ASL, paths and ARNs included', () => {
    const { isValid, errorsText } = aslValidator(definition, { checkPaths: true, checkArn: true });
    assert.ok(isValid, errorsText('\n'));
  });

  it('runs two commands in sequence, then succeeds', () => {
    assert.equal(tasks.length, 2);
    const first = definition.States[definition.StartAt];
    assert.equal(first.Type, 'Task');
    const second = definition.States[first.Next];
    assert.equal(second.Type, 'Task');
    assert.equal(definition.States[second.Next].Type, 'Succeed');
    assert.deepEqual(
      tasks.map(([, state]) => state.Parameters.Payload.command),
      ['echo', 'sleep'],
    );
  });

  for (const [name, state] of tasks) {
    describe(name, () => {
      it('invokes the manage function through the Lambda integration, its ARN a deploy-time substitution', () => {
        assert.equal(state.Resource, 'arn:aws:states:::lambda:invoke');
        assert.equal(state.Parameters.FunctionName, '${ManageFunctionArn}');
        assert.ok(Number.isInteger(state.TimeoutSeconds) && state.TimeoutSeconds > 0 && state.TimeoutSeconds <= 900, 'TimeoutSeconds within the Lambda limit');
      });

      it('sends a direct-invocation event with actor = $$.Execution.Id and a per-step idempotency key', () => {
        const payload = state.Parameters.Payload;
        assert.deepEqual(
          Object.keys(payload).map((key) => key.replace(/\.\$$/, '')).sort(),
          ['actor', 'command', 'data', 'idempotencyKey'],
        );
        assert.equal(payload['actor.$'], '$$.Execution.Id');
        assert.match(payload['idempotencyKey.$'], /^States\.Format\('\{\}-[a-z]+', \$\$\.Execution\.Name\)$/);
      });

      it('retries AuditUnavailable with back-off and Lambda service errors, and nothing that ran', () => {
        const audit = state.Retry.find((retrier: any) => retrier.ErrorEquals.includes('AuditUnavailable'));
        assert.ok(audit, 'a retrier for AuditUnavailable');
        assert.deepEqual(audit.ErrorEquals, ['AuditUnavailable']);
        assert.ok(audit.IntervalSeconds >= 1, 'IntervalSeconds >= 1');
        assert.ok(audit.BackoffRate > 1, 'BackoffRate > 1');
        assert.ok(audit.MaxAttempts >= 2, 'MaxAttempts >= 2');

        const lambda = state.Retry.find((retrier: any) => retrier.ErrorEquals.includes('Lambda.ServiceException'));
        assert.ok(lambda, 'a retrier for Lambda service errors');
        for (const error of LAMBDA_SERVICE_ERRORS) assert.ok(lambda.ErrorEquals.includes(error), error);
        assert.ok(lambda.BackoffRate > 1 && lambda.MaxAttempts >= 1);

        const retried = state.Retry.flatMap((retrier: any) => retrier.ErrorEquals);
        for (const error of ['CommandFailed', 'CommandTimedOut', 'States.ALL', 'States.TaskFailed', 'States.Timeout']) {
          assert.ok(!retried.includes(error), `${error} must not be retried: the command ran`);
        }
      });

      it('catches CommandFailed and CommandTimedOut into the failure state', () => {
        assert.equal(state.Catch.length, 1);
        const [catcher] = state.Catch;
        assert.deepEqual([...catcher.ErrorEquals].sort(), ['CommandFailed', 'CommandTimedOut']);
        assert.equal(definition.States[catcher.Next].Type, 'Fail');
        assert.equal(catcher.ResultPath, '$.failure');
      });

      it('names only errors the contract or AWS defines', () => {
        const names = [...state.Retry, ...state.Catch].flatMap((rule: any) => rule.ErrorEquals);
        for (const error of names) {
          assert.ok(CONTRACT_ERRORS.has(error) || LAMBDA_SERVICE_ERRORS.includes(error), `unknown error name ${error}`);
        }
      });
    });
  }

  it('fails with the caught error name and cause', () => {
    const failed = Object.values(definition.States as Record<string, any>).find((state) => state.Type === 'Fail');
    assert.equal(failed.ErrorPath, '$.failure.Error');
    assert.equal(failed.CausePath, '$.failure.Cause');
  });
});
