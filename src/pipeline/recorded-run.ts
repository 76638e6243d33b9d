/**
 * One run of a command, recorded: the command's lease held around it when it
 * is exclusive, the command run under its time limit (run.ts), its output
 * scrubbed, its outcome written (recorder.ts) and turned into the response or
 * the contract's error. The first record (attempt or start) is the caller's:
 * it differs between a run now and a run decided earlier.
 */
import type { Command } from '../command.js';
import { CommandFailed, CommandTimedOut, Conflict, toManageError, truncate } from '../errors.js';
import type { Logger } from '../log.js';
import { auditLimits, capJson, scrubValue, secretScrubber } from '../redact.js';
import { actorKey, type OutcomeRecord } from '../stores/audit/store.js';
import type { StateStore } from '../stores/state/store.js';
import { CommandLeases } from './rails.js';
import type { Policy } from './policy.js';
import type { Recorder } from './recorder.js';
import { runWithTimeLimit } from './run.js';
import type { ExecutionResponse, RunSpec } from './types.js';

export const recordedRunDefaults = {
  /**
   * A lease outlives its run's time limit by this much, then frees itself if the holder died.
   * It covers the attempt write that comes after the lease (an append may take up to its 5 s
   * budget plus a request timeout) and the outcome write.
   */
  leaseMarginMs: 15_000,
  /**
   * How long a lease is kept for a command stopped by its time limit that has not
   * really stopped (it ignores its abort signal): Lambda's longest timeout, so that
   * the lease outlives any invocation the command may still be running in.
   */
  leaseUntilStoppedMs: 900_000,
} as const;

/** What a run tells the lease around it: when the command's own work has really stopped. */
export interface LeaseHold {
  stopped?: Promise<void>;
  /** The run ended by its time limit: the command may still be going. */
  timedOut?: boolean;
}

export class RecordedRuns {
  private readonly leases: CommandLeases;

  constructor(private readonly deps: { state: StateStore; policy: Policy; recorder: Recorder; logger: Logger; now: () => number }) {
    this.leases = new CommandLeases(deps.state, deps.now);
  }

  /** Holds the command's lease around `run` when the command is exclusive. */
  async exclusive<T>(command: Command, executionId: string, timeLimitMs: number, run: (hold: LeaseHold) => Promise<T>): Promise<T> {
    const hold: LeaseHold = {};
    if (!this.deps.policy.isExclusive(command)) return run(hold);
    const { recorder, logger, now } = this.deps;
    const holder = await recorder.guardState(() => this.leases.acquire(command.name, executionId, timeLimitMs + recordedRunDefaults.leaseMarginMs));
    if (holder !== undefined) throw busy(command, holder);
    try {
      return await run(hold);
    } finally {
      const release = () => recorder.bestEffort('lease.release_failed', () => this.leases.release(command.name, executionId));
      let stopped = !hold.timedOut || !hold.stopped;
      if (!stopped) await Promise.race([hold.stopped!.then(() => (stopped = true)), Promise.resolve()]);
      if (stopped) {
        await release();
      } else {
        // Stopped by its time limit but still going: one run at a time means the lease stays until
        // the command really stops, or until its Lambda can no longer be running, whichever is first.
        const until = now() + recordedRunDefaults.leaseUntilStoppedMs;
        logger.log('warn', 'lease.held_until_stopped', { executionId, command: command.name, until: new Date(until).toISOString() });
        await recorder.bestEffort('lease.extend_failed', () => this.leases.extend(command.name, executionId, until));
        void hold.stopped!.then(release);
      }
    }
  }

  /** Refuses now an exclusive command that is running (for runs accepted to start later, which check again). */
  async refuseIfBusy(command: Command): Promise<void> {
    if (!this.deps.policy.isExclusive(command)) return;
    const holder = await this.deps.recorder.guardState(() => this.leases.holder(command.name));
    if (holder !== undefined) throw busy(command, holder);
  }

  /** Runs the command under its time limit and records the outcome; the attempt (or start) is already recorded. */
  async run(spec: RunSpec): Promise<ExecutionResponse> {
    try {
      return await this.runAndRecord(spec);
    } catch (error) {
      // Past the attempt record, every failure belongs to this execution: a retry must not run it again.
      const failure = toManageError(error);
      failure.executionId ??= spec.executionId;
      throw failure;
    }
  }

  private async runAndRecord({ command, args, executionId, actor, dryRun, timeLimitMs, started, answerBy, lease }: RunSpec): Promise<ExecutionResponse> {
    const { logger, now } = this.deps;
    const scrub = secretScrubber(args, command.sensitive ?? []);
    const logFields = { executionId, command: command.name, actor: actorKey(actor) };
    logger.log('info', 'execution.started', { ...logFields, dryRun, timeLimitMs });

    const run = await runWithTimeLimit(command, args, { executionId, actor, dryRun, timeLimitMs, now });
    if (lease) Object.assign(lease, { stopped: run.stopped, timedOut: run.status === 'timed_out' });
    const finished = now();
    const output = run.output.map((line) => truncate(scrub(line), auditLimits.outputLineChars));
    const result = scrubValue(run.result, scrub);
    const errorMessage = run.error === undefined ? undefined : truncate(scrub(run.error), auditLimits.errorMessageChars);
    const outcome: OutcomeRecord = {
      executionId,
      command: command.name,
      status: run.status,
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - started,
      ...(run.status === 'succeeded' || run.status === 'planned' ? { result: capJson(result, auditLimits.resultBytes) } : {}),
      ...(errorMessage !== undefined
        ? { error: { code: run.status === 'timed_out' ? 'CommandTimedOut' : 'CommandFailed', message: errorMessage } }
        : {}),
      output: output.slice(0, auditLimits.outputLines),
    };
    const auditRecorded = await this.deps.recorder.recordOutcome(outcome, logFields, answerBy);
    logger.log(run.status === 'succeeded' || run.status === 'planned' ? 'info' : 'warn', 'execution.finished', {
      ...logFields,
      status: run.status,
      durationMs: outcome.durationMs,
      auditRecorded,
    });

    if (run.status === 'failed' || run.status === 'timed_out') {
      const error =
        run.status === 'failed'
          ? new CommandFailed(errorMessage ?? 'Command failed.', { executionId })
          : new CommandTimedOut(errorMessage ?? 'Command timed out.', { executionId });
      if (!auditRecorded) error.auditRecorded = false;
      throw error;
    }
    return {
      executionId,
      command: command.name,
      status: run.status,
      result,
      output,
      startedAt: new Date(started).toISOString(),
      finishedAt: outcome.finishedAt,
      durationMs: outcome.durationMs,
      ...(dryRun ? { dryRun: true as const } : {}),
      ...(auditRecorded ? {} : { auditRecorded: false as const }),
    };
  }
}

function busy(command: Command, holder: string): Conflict {
  return new Conflict(`Command "${command.name}" is exclusive and already running (execution ${holder}).`, holder);
}
