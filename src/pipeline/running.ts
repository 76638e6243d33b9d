/**
 * Running a command: the one front door for a run request, over HTTP or by
 * direct invocation. allowlist → authorize → validate → rails (idempotency
 * key) → then either deferred (approval, async, task token: deferring.ts) or
 * run now: lease → attempt record → run under the time limit → outcome record
 * (recorded-run.ts). Authentication happens before, in the transport.
 */
import type { Command } from '../command.js';
import type { ManageConfig } from '../config.js';
import { Conflict, InvalidRequest, ManageError, errorFromCode, toManageError } from '../errors.js';
import { newExecutionId } from '../ids.js';
import { actorKey } from '../stores/audit/store.js';
import type { StateStore } from '../stores/state/store.js';
import { validateArguments } from '../validation.js';
import type { Deferring } from './deferring.js';
import type { Policy } from './policy.js';
import { IdempotencyKeys } from './rails.js';
import type { RecordedRuns } from './recorded-run.js';
import { finalOutcome, recorderDefaults, type Recorder } from './recorder.js';
import type { TaskTokens } from './task-tokens.js';
import type { ExecuteResult, ExecutionRequest } from './types.js';

export class Running {
  private readonly idempotency: IdempotencyKeys;

  constructor(
    private readonly deps: {
      config: ManageConfig;
      state: StateStore;
      now: () => number;
      policy: Policy;
      recorder: Recorder;
      runs: RecordedRuns;
      deferring: Deferring;
      tasks: TaskTokens;
    },
  ) {
    this.idempotency = new IdempotencyKeys(deps.state, deps.config.idempotencyTtlSeconds * 1000, deps.now);
  }

  /** Run one command for an authenticated actor. Throws a ManageError on every refusal or failure. */
  async execute(request: ExecutionRequest): Promise<ExecuteResult> {
    const { policy, recorder, now } = this.deps;
    // The transport's bound counts from here: claims, leases and the attempt write eat into it too.
    const notAfter = now() + request.maxTimeMs;
    const command = await policy.command(request.command);
    policy.authorize(command, request.actor);
    const args = validateArguments(command.args, request.data);
    if (request.dryRun && !command.plan) {
      throw new InvalidRequest(`Command "${command.name}" has no dry run: it declares no plan.`);
    }
    const executionId = newExecutionId(now());
    const key = await recorder.loadDigestKey();
    if (request.idempotencyKey === undefined) return this.start(command, args, executionId, request, notAfter);

    const scope = { actorKey: actorKey(request.actor), command: command.name, key: request.idempotencyKey };
    const fingerprint = IdempotencyKeys.fingerprint(request.data, request.dryRun, key);
    const claim = await recorder.guardState(() => this.idempotency.claim(scope, fingerprint, executionId));
    switch (claim.kind) {
      case 'mismatch':
        throw new Conflict('This idempotency key was already used with other arguments.');
      case 'in_flight': {
        if (request.taskToken) {
          await this.deps.tasks.rebind(claim.executionId, request.taskToken);
          return { executionId: claim.executionId, command: command.name, status: 'accepted', requestedAt: new Date(now()).toISOString() };
        }
        // The first request may have ended without remembering its outcome (its instance died, the state
        // store failed): the audit knows, and a retry gets what it says rather than a day of 409s.
        const record = await recorder.getExecution(claim.executionId, { consistent: true });
        const outcome = record && finalOutcome(record);
        if (outcome instanceof ManageError) throw outcome;
        if (outcome) return outcome;
        throw new Conflict(`A request with this idempotency key is still in progress (execution ${claim.executionId}).`, claim.executionId);
      }
      case 'replay':
        if (claim.outcome.kind === 'response') {
          const body = claim.outcome.body as ExecuteResult;
          if (request.taskToken) await this.deps.tasks.rebind(body.executionId, request.taskToken);
          return body;
        }
        throw Object.assign(errorFromCode(claim.outcome.code, claim.outcome.message, claim.outcome.executionId), claim.outcome.auditRecorded === false ? { auditRecorded: false } : {});
    }

    try {
      const result = await this.start(command, args, executionId, request, notAfter);
      await recorder.bestEffort('idempotency.complete_failed', () =>
        this.idempotency.complete(scope, fingerprint, executionId, { kind: 'response', body: result }),
      );
      return result;
    } catch (error) {
      const failure = toManageError(error);
      if (failure.executionId) {
        // It ran (and failed): a retry must get this failure, not a second run.
        const remembered = {
          kind: 'error' as const,
          code: failure.name,
          message: failure.message,
          executionId: failure.executionId,
          ...(failure.auditRecorded === false ? { auditRecorded: false as const } : {}),
        };
        await recorder.bestEffort('idempotency.complete_failed', () => this.idempotency.complete(scope, fingerprint, executionId, remembered));
      } else {
        // It never ran: a retry may run it.
        await recorder.bestEffort('idempotency.release_failed', () => this.idempotency.release(scope, executionId));
      }
      throw error;
    }
  }

  /** Defers the run (approval, worker) or runs it now. */
  private async start(
    command: Command,
    args: Record<string, unknown>,
    executionId: string,
    request: ExecutionRequest,
    notAfter: number,
  ): Promise<ExecuteResult> {
    const { policy, recorder, runs, deferring, now } = this.deps;
    const approvers = policy.approversOf(command.name, command);
    if (approvers.length > 0 && !request.dryRun) return deferring.requestApproval(command, args, executionId, request, approvers);
    if (request.respondAsync || request.taskToken) return deferring.accept(command, args, executionId, request);

    const timeLimitMs = policy.timeLimit(command, request.maxTimeMs);
    const started = now();
    const attempt = recorder.attemptRecord(command, args, executionId, request, {
      // Even a dry run is `running` until its outcome says `planned`: a crashed one must not read as done.
      status: 'running',
      started,
      deadline: started + timeLimitMs,
      timeLimitMs,
    });
    const logFields = { executionId, command: command.name, actor: actorKey(request.actor), channel: request.source.channel };
    return runs.exclusive(command, executionId, timeLimitMs, async (lease) => {
      await recorder.appendOrRefuse({ kind: 'attempt', record: attempt }, logFields);
      const remaining = Math.max(1, Math.min(timeLimitMs, notAfter - now()));
      return runs.run({
        command,
        args,
        executionId,
        actor: request.actor,
        dryRun: request.dryRun,
        timeLimitMs: remaining,
        started,
        answerBy: notAfter + recorderDefaults.outcomeWriteMarginMs,
        lease,
      });
    });
  }
}
