/**
 * Step Functions task tokens (`waitForTaskToken`): the token a task hands over
 * is kept beside its execution (`TASK#` in the state store, apart from the
 * pending run, so that a retried task can hand over a new one at any time),
 * and the execution's outcome is reported to it once known.
 */
import { ManageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../stores/state/store.js';
import type { TaskReporter } from '../handler/worker.js';
import { finalOutcome, type Recorder } from './recorder.js';
import { workerDefaults, type ExecutionResponse } from './types.js';

const taskKey = (executionId: string) => `TASK#${executionId}`;

export class TaskTokens {
  constructor(
    private readonly deps: { state: StateStore; recorder: Recorder; logger: Logger; now: () => number; reporter?: TaskReporter },
  ) {}

  /** Keeps the token of a task that waits for an execution due to end by `until`. */
  async bind(executionId: string, taskToken: string, until: number): Promise<void> {
    await this.deps.recorder.guardState(() =>
      this.deps.state.create({ pk: taskKey(executionId), owner: executionId, expiresAt: until + workerDefaults.workerMaxTimeMs, value: { taskToken } }),
    );
  }

  /** A retried Step Functions task brings a new token for an execution already under way or done. */
  async rebind(executionId: string, taskToken: string): Promise<void> {
    const { state, recorder, now } = this.deps;
    const item = { pk: taskKey(executionId), owner: executionId, expiresAt: now() + workerDefaults.workerStartGraceMs + 2 * workerDefaults.workerMaxTimeMs, value: { taskToken } };
    const replaced = await recorder.guardState(() => state.replace(item));
    if (!replaced) await recorder.guardState(() => state.create(item));
    // Finished already: nobody else will report to this token.
    const record = await recorder.getExecution(executionId, { consistent: true });
    const outcome = record && finalOutcome(record);
    if (outcome) await this.report(executionId, outcome);
  }

  /**
   * Reports an outcome to the task token bound to the execution. If a retried
   * task bound a new token meanwhile, that one is told too.
   */
  async report(executionId: string, outcome: ExecutionResponse | ManageError): Promise<void> {
    const reporter = this.deps.reporter;
    if (!reporter) {
      this.deps.logger.log('error', 'task.no_reporter', { executionId });
      return;
    }
    const told = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const task = await this.deps.state.get<{ taskToken: string }>(taskKey(executionId)).catch(() => undefined);
      const token = task?.value.taskToken;
      if (!token || told.has(token)) return;
      told.add(token);
      await this.deps.recorder.bestEffort('task.report_failed', () =>
        outcome instanceof ManageError ? reporter.fail(token, outcome.name, outcome.message) : reporter.succeed(token, outcome),
      );
    }
  }
}
