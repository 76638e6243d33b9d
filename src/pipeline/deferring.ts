/**
 * Runs that happen later: a request that needs a second person's approval
 * (and the approver's decision), a request answered at once (`respond-async`,
 * or a Step Functions task token) and run by a worker invocation. What the
 * later run needs is kept in the state store (`PENDING#`); a conditional
 * delete of it is the lock that lets exactly one decision or worker run it.
 */
import type { Actor, Command } from '../command.js';
import { commandDefaults } from '../command.js';
import type { ManageConfig } from '../config.js';
import { CommandFailed, CommandNotAllowed, Conflict, Forbidden, InternalError, InvalidRequest, NotFound, toManageError, type ManageError } from '../errors.js';
import { EXECUTION_ID_PATTERN } from '../ids.js';
import { describeError, type Logger } from '../log.js';
import { actorKey, type AttemptRecord } from '../stores/audit/store.js';
import type { StateStore } from '../stores/state/store.js';
import type { WorkerLauncher } from '../handler/worker.js';
import type { Policy } from './policy.js';
import { planDigest } from './rails.js';
import type { RecordedRuns } from './recorded-run.js';
import type { Recorder } from './recorder.js';
import type { TaskTokens } from './task-tokens.js';
import { workerDefaults, type ExecutionRequest, type ExecutionResponse, type PendingResponse, type RejectedResponse } from './types.js';

/** What a deferred run (awaiting approval, or its worker) needs later: kept in the state store, not the audit. */
interface PendingRun {
  kind: 'approval' | 'async';
  command: string;
  args: Record<string, unknown>;
  dryRun: boolean;
  planDigest: string;
  requester: Actor;
  approvers: string[];
  /** A Step Functions task waits for this execution: its token is in the `TASK#` item. */
  reportsToTask?: boolean;
  /** The command's sensitive argument names, to recompute the plan digest. */
  sensitive?: readonly string[];
}

const pendingKey = (executionId: string) => `PENDING#${executionId}`;

export class Deferring {
  constructor(
    private readonly deps: {
      config: ManageConfig;
      state: StateStore;
      logger: Logger;
      now: () => number;
      policy: Policy;
      recorder: Recorder;
      runs: RecordedRuns;
      tasks: TaskTokens;
      launcher?: WorkerLauncher;
    },
  ) {}

  /** Records the request as awaiting approval by one of `approvers` (202). */
  async requestApproval(
    command: Command,
    args: Record<string, unknown>,
    executionId: string,
    request: ExecutionRequest,
    approvers: string[],
  ): Promise<PendingResponse> {
    const requested = this.deps.now();
    const expiresAt = requested + this.deps.config.approvalTtlSeconds * 1000;
    const digest = planDigest(command.name, args, command.sensitive ?? [], this.deps.recorder.digestKey.current());
    const attempt = this.deps.recorder.attemptRecord(command, args, executionId, request, {
      status: 'awaiting_approval',
      started: requested,
      deadline: expiresAt,
      timeLimitMs: command.timeLimitMs ?? commandDefaults.timeLimitMs,
      planDigest: digest,
    });
    const logFields = await this.defer(attempt, request, { kind: 'approval', args, dryRun: false, approvers, sensitive: command.sensitive ?? [] });
    this.deps.logger.log('info', 'approval.requested', logFields);
    return {
      executionId,
      command: command.name,
      status: 'awaiting_approval',
      requestedAt: attempt.startedAt,
      expiresAt: attempt.deadline,
      planDigest: digest,
      approvers,
    };
  }

  /** Records the execution as accepted, then hands it to a worker invocation (202). */
  async accept(command: Command, args: Record<string, unknown>, executionId: string, request: ExecutionRequest): Promise<PendingResponse> {
    const launcher = this.deps.launcher;
    if (!launcher) {
      this.deps.logger.log('error', 'worker.unavailable', { command: command.name });
      throw new InternalError();
    }
    // Refused now rather than accepted and failed later in the worker (which still checks, for races).
    await this.deps.runs.refuseIfBusy(command);
    const timeLimitMs = Math.min(command.timeLimitMs ?? commandDefaults.timeLimitMs, workerDefaults.workerMaxTimeMs);
    const accepted = this.deps.now();
    const deadline = accepted + workerDefaults.workerStartGraceMs + timeLimitMs;
    const attempt = this.deps.recorder.attemptRecord(command, args, executionId, request, { status: 'accepted', started: accepted, deadline, timeLimitMs });
    const logFields = await this.defer(attempt, request, { kind: 'async', args, dryRun: request.dryRun, approvers: [] });
    await this.launchWorker(launcher, executionId, command.name, logFields);
    this.deps.logger.log('info', 'execution.accepted', logFields);
    return { executionId, command: command.name, status: 'accepted', requestedAt: attempt.startedAt };
  }

  /**
   * An approver's decision on an execution awaiting approval (two-person rule):
   * the approver is not the requester and is in one of the command's approver
   * groups. Approval runs the command now, with the arguments that were requested.
   */
  async decide(
    executionId: string,
    approver: Actor,
    decision: 'approved' | 'rejected',
    options: { planDigest?: string; maxTimeMs: number },
  ): Promise<ExecutionResponse | RejectedResponse | PendingResponse> {
    const { state, recorder, policy, logger } = this.deps;
    // Asked of every approval alike, before anything is looked up: it reveals nothing about the id.
    if (decision === 'approved' && !options.planDigest) {
      throw new InvalidRequest(
        'Approving needs the "planDigest" of the request you reviewed: read it (GET /__manage__/executions/{id}, or `mm approve <id>`) and send it back.',
      );
    }
    if (!EXECUTION_ID_PATTERN.test(executionId)) throw new NotFound('No such execution.');
    const pending = await recorder.guardState(() => state.get<PendingRun>(pendingKey(executionId)));
    if (!pending) {
      const record = await recorder.getExecution(executionId, { consistent: true });
      const command = record && (await policy.commandIfAllowed(record.command));
      if (!record || !policy.maySeeDecision(record, approver, command)) throw new NotFound('No such execution.');
      throw new Conflict(
        record.status === 'awaiting_approval'
          ? `Execution ${executionId} cannot be decided now; try again.`
          : `Execution ${executionId} is not awaiting approval: it is ${record.status}.`,
      );
    }
    const run = pending.value;
    const command = await policy.commandIfAllowed(run.command);
    // The approvers now: the config may have changed since the request (the recorded ones if it names none).
    const current = policy.approversOf(run.command, command);
    const approvers = current.length > 0 ? current : run.approvers;
    // Authorize before revealing state: whoever may not know of this execution gets what an unknown id gets.
    const mayKnow =
      policy.isAuditor(approver) ||
      policy.samePerson(approver, run.requester) ||
      policy.isApprover(approver, run.approvers) ||
      policy.isApprover(approver, approvers);
    if (!mayKnow) throw new NotFound('No such execution.');
    if (run.kind !== 'approval') throw new Conflict(`Execution ${executionId} is not awaiting approval.`);
    if (!policy.isApprover(approver, approvers)) {
      throw new Forbidden(`Only members of ${approvers.join(', ')} may decide on this execution.`);
    }
    if (policy.samePerson(approver, run.requester)) {
      throw new Forbidden('You cannot decide on your own request: a second person must (two-person rule).');
    }
    if (options.planDigest !== undefined && options.planDigest !== run.planDigest) {
      throw new Conflict('The plan you reviewed is not the plan awaiting approval.');
    }
    const key = await recorder.loadDigestKey();
    if (planDigest(run.command, run.args, run.sensitive ?? [], key) !== run.planDigest) {
      logger.log('error', 'approval.digest_mismatch', { executionId, command: run.command });
      throw new InternalError();
    }
    // The conditional delete is the lock: of two approvers racing, one decides.
    const consumed = await recorder.guardState(() => state.delete<PendingRun>(pendingKey(executionId), executionId, { liveOnly: true }));
    if (!consumed) throw new Conflict(`Execution ${executionId} was already decided, or its approval expired.`);

    const decidedAt = new Date(this.deps.now()).toISOString();
    const logFields = { executionId, command: run.command, actor: actorKey(approver), decision };
    try {
      await recorder.appendOrRefuse({ kind: 'decision', record: { executionId, command: run.command, decision, by: approver, at: decidedAt } }, logFields);
    } catch (error) {
      // Undecided after all: put the request back so that it can still be decided.
      await recorder.bestEffort('approval.restore_failed', () => state.create(consumed));
      throw error;
    }
    logger.log('info', 'approval.decided', logFields);
    if (decision === 'rejected') {
      if (run.reportsToTask) await this.deps.tasks.report(executionId, new Forbidden(`Execution ${executionId} was rejected by ${actorKey(approver)}.`));
      return { executionId, command: run.command, status: 'rejected', decidedBy: actorKey(approver), decidedAt };
    }
    if (!command) {
      // Approved, but the command was taken off the allowlist since the request: it will never run.
      // Closed now, with the reason, and a waiting Step Functions task is told, rather than left to expire.
      const failure = new CommandNotAllowed(run.command);
      failure.message = `Command "${run.command}" is no longer allowed; the approved request was not run.`;
      await recorder.closeUnrun(executionId, run.command, failure);
      failure.executionId = executionId;
      logger.log('warn', 'approval.command_not_allowed', logFields);
      if (run.reportsToTask) await this.deps.tasks.report(executionId, failure);
      throw failure;
    }
    const launcher = this.deps.launcher;
    if (launcher && (run.reportsToTask || (command.timeLimitMs ?? commandDefaults.timeLimitMs) > options.maxTimeMs)) {
      // Too long for this request (or a Step Functions task waits): the approved run goes to a worker.
      const deadline = this.deps.now() + workerDefaults.workerStartGraceMs + Math.min(command.timeLimitMs ?? commandDefaults.timeLimitMs, workerDefaults.workerMaxTimeMs);
      await recorder.guardState(() =>
        state.create<PendingRun>({ pk: pendingKey(executionId), owner: executionId, expiresAt: deadline, value: { ...run, kind: 'async' } }),
      );
      await this.launchWorker(launcher, executionId, run.command, logFields);
      return { executionId, command: run.command, status: 'accepted', requestedAt: decidedAt };
    }
    return this.runDeferred(executionId, run, options.maxTimeMs);
  }

  /**
   * The worker invocation: runs an accepted execution once. The pending run is
   * consumed by a conditional delete, so a duplicate delivery of the worker
   * event finds nothing to do. Never throws: there is no caller to tell.
   */
  async runAccepted(executionId: string, maxTimeMs: number): Promise<void> {
    const { state, logger } = this.deps;
    const logFields = { executionId };
    try {
      const pending = await state.get<PendingRun>(pendingKey(executionId));
      // Only accepted runs: a forged worker event cannot skip an approval.
      if (pending?.value.kind !== 'async') {
        logger.log('warn', 'worker.nothing_to_run', logFields);
        return;
      }
      const consumed = await state.delete<PendingRun>(pendingKey(executionId), executionId, { liveOnly: true });
      if (!consumed) {
        logger.log('warn', 'worker.already_taken', logFields);
        return;
      }
      // Its outcome is in the audit (and reported to its task token): nobody else awaits it.
      await this.runDeferred(executionId, consumed.value, Math.min(maxTimeMs, workerDefaults.workerMaxTimeMs)).catch(() => undefined);
    } catch (error) {
      logger.log('error', 'worker.failed', { ...logFields, error: describeError(error) });
    }
  }

  /** Runs an execution decided earlier (approved, or accepted for a worker) and reports to its task token. */
  private async runDeferred(executionId: string, run: PendingRun, maxTimeMs: number): Promise<ExecutionResponse> {
    const { policy, recorder, runs, tasks, now } = this.deps;
    try {
      const command = await policy.command(run.command);
      const timeLimitMs = policy.timeLimit(command, maxTimeMs);
      const response = await runs.exclusive(command, executionId, timeLimitMs, async (lease) => {
        const started = now();
        const start = { executionId, command: command.name, startedAt: new Date(started).toISOString(), deadline: new Date(started + timeLimitMs).toISOString(), timeLimitMs };
        await recorder.appendOrRefuse({ kind: 'start', record: start }, { executionId, command: command.name });
        return runs.run({ command, args: run.args, executionId, actor: run.requester, dryRun: run.dryRun, timeLimitMs, started, lease });
      });
      if (run.reportsToTask) await tasks.report(executionId, response);
      return response;
    } catch (error) {
      const failure = toManageError(error);
      if (!failure.executionId) {
        // Refused before it ran (no longer allowed, exclusive and busy, audit down): close the execution.
        await recorder.closeUnrun(executionId, run.command, failure);
        failure.executionId = executionId;
      }
      if (run.reportsToTask) await tasks.report(executionId, failure);
      throw failure;
    }
  }

  /**
   * Records the first record of an execution that runs later, and keeps what the
   * later run needs (its full arguments, its task token) in the state store.
   */
  private async defer(
    attempt: AttemptRecord,
    request: ExecutionRequest,
    run: Pick<PendingRun, 'kind' | 'args' | 'dryRun' | 'approvers' | 'sensitive'>,
  ): Promise<Record<string, unknown>> {
    const { recorder, state } = this.deps;
    const { executionId, command } = attempt;
    const logFields = { executionId, command, actor: actorKey(request.actor), channel: request.source.channel };
    await recorder.appendOrRefuse({ kind: 'attempt', record: attempt }, logFields);
    const expiresAt = Date.parse(attempt.deadline);
    try {
      await recorder.guardState(() =>
        state.create<PendingRun>({
          pk: pendingKey(executionId),
          owner: executionId,
          expiresAt,
          value: {
            ...run,
            command,
            planDigest: attempt.planDigest ?? planDigest(command, run.args, Object.keys(run.args), recorder.digestKey.current()),
            requester: request.actor,
            ...(request.taskToken ? { reportsToTask: true } : {}),
          },
        }),
      );
      if (request.taskToken) await this.deps.tasks.bind(executionId, request.taskToken, expiresAt);
    } catch (error) {
      // Recorded but never to run: close it, and leave nothing that could still be approved or run.
      const failure = toManageError(error);
      await recorder.closeUnrun(executionId, command, failure);
      await recorder.bestEffort('pending.cleanup_failed', () => state.delete(pendingKey(executionId), executionId));
      throw failure;
    }
    return logFields;
  }

  /** Queues the worker invocation of a pending run; if it cannot be queued, the run is closed as failed. */
  private async launchWorker(launcher: WorkerLauncher, executionId: string, command: string, logFields: Record<string, unknown>): Promise<void> {
    try {
      await launcher.launch({ mmWorker: { executionId } });
    } catch (error) {
      this.deps.logger.log('error', 'worker.launch_failed', { ...logFields, error: describeError(error) });
      // Unless a worker already took it, the run is off; if the store cannot tell, assume it is.
      const taken = await this.deps.state.delete(pendingKey(executionId), executionId).catch(() => 'unknown');
      if (taken) {
        const failure: ManageError = new CommandFailed('The worker could not be started; the command did not run.', { executionId });
        await this.deps.recorder.closeUnrun(executionId, command, failure);
        throw failure;
      }
    }
  }
}
