/**
 * How the rooms write and read the audit (and guard the state store): a record
 * that must exist before anything happens is appended or the request refused;
 * a lost outcome is retried, then reported rather than hidden; cleanup writes
 * are best effort; a store that cannot answer fails closed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from '../command.js';
import type { ManageConfig } from '../config.js';
import { AuditUnavailable, InvalidRequest, errorFromCode, type ManageError } from '../errors.js';
import { describeError, type Logger } from '../log.js';
import { auditLimits, capJson, redactArguments, scrubValue, secretScrubber } from '../redact.js';
import type { StateStore } from '../stores/state/store.js';
import { DigestKey, sensitiveHmacs } from './rails.js';
import { AuditIntegrityError, type AttemptRecord, type AuditEntry, type AuditStore, type ExecutionRecord, type ExecutionStatus, type OutcomeRecord } from '../stores/audit/store.js';
import type { ExecutionRequest, ExecutionResponse } from './types.js';

export const recorderDefaults = {
  /** Delays before each try of the outcome write: it must not be lost to one throttle. */
  outcomeRetryDelaysMs: [0, 100, 400],
  /** Past the run's bound, how long the outcome write may still be retried before the caller is answered. */
  outcomeWriteMarginMs: 1000,
} as const;

export class Recorder {
  /** The key of plan digests, idempotency fingerprints and sensitive arguments' HMACs (rails.ts). */
  readonly digestKey: DigestKey;

  constructor(private readonly deps: { config: ManageConfig; audit: AuditStore; state: StateStore; logger: Logger; now: () => number }) {
    this.digestKey = new DigestKey(deps.state, deps.config.auditHmacKey);
  }

  /** Loads the digest key (once per instance); a state store that cannot answer refuses the request. */
  loadDigestKey(): Promise<Buffer> {
    return this.guardState(() => this.digestKey.load());
  }

  /** Writes a record that must exist before anything happens: if it cannot be written, nothing happens. */
  async appendOrRefuse(entry: AuditEntry, logFields: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.audit.append(entry);
    } catch (error) {
      this.deps.logger.log('error', 'audit.append_failed', { ...logFields, kind: entry.kind, error: describeError(error) });
      if (error instanceof InvalidRequest) throw error;
      throw new AuditUnavailable({ cause: error });
    }
  }

  /** True if recorded. The attempt record already proves the run; a lost outcome is reported, not hidden. */
  async recordOutcome(outcome: OutcomeRecord, logFields: Record<string, unknown>, answerBy?: number): Promise<boolean> {
    let lastError: unknown;
    for (const delay of recorderDefaults.outcomeRetryDelaysMs) {
      // A caller who gave up hears nothing: answer in time, with `auditRecorded: false`.
      if (delay && answerBy !== undefined && this.deps.now() + delay > answerBy) break;
      if (delay) await sleep(delay);
      try {
        await this.deps.audit.append({ kind: 'outcome', record: outcome });
        return true;
      } catch (error) {
        lastError = error;
      }
    }
    this.deps.logger.log('error', 'audit.outcome_failed', { ...logFields, error: describeError(lastError) });
    return false;
  }

  /** The outcome of an execution that was recorded but never ran. */
  async closeUnrun(executionId: string, command: string, failure: ManageError): Promise<void> {
    await this.bestEffort('audit.outcome_failed', () =>
      this.deps.audit.append({
        kind: 'outcome',
        record: { executionId, command, status: 'failed', finishedAt: new Date(this.deps.now()).toISOString(), durationMs: 0, error: { code: failure.name, message: failure.message }, output: [] },
      }),
    );
  }

  /**
   * One execution's record; a store that cannot answer is a 503, not a "not found".
   * `consistent` for reads that decide something (never from a lagging index).
   */
  getExecution(executionId: string, options: { consistent?: boolean } = {}): Promise<ExecutionRecord | undefined> {
    return this.readAudit(() => this.deps.audit.getExecution(executionId, options));
  }

  async readAudit<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof AuditIntegrityError) {
        // What verify would report as altered is not shown as if it were the record.
        this.deps.logger.log('error', 'audit.unverified', { executionId: error.executionId });
        throw new AuditUnavailable({ cause: error, message: `The audit records of execution ${error.executionId} do not verify; they are not shown (see GET /__manage__/audit/verify).` });
      }
      this.deps.logger.log('error', 'audit.read_failed', { error: describeError(error) });
      if (error instanceof InvalidRequest) throw error;
      throw new AuditUnavailable({ cause: error, message: 'The audit store cannot be read.' });
    }
  }

  /** The state store guards runs: when it cannot answer, nothing runs (fail closed). */
  async guardState<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      this.deps.logger.log('error', 'state.unavailable', { error: describeError(error) });
      if (error instanceof InvalidRequest) throw error;
      throw new AuditUnavailable({ cause: error, message: 'The state store cannot be reached; the command was not run.' });
    }
  }

  /** For writes whose loss is logged but must not change the answer (cleanup, releases, memos). */
  async bestEffort(event: string, operation: () => Promise<unknown>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      this.deps.logger.log('warn', event, { error: describeError(error) });
    }
  }

  /** The first record of an execution: redacted, scrubbed and capped arguments, keyed hashes of the sensitive ones. */
  attemptRecord(
    command: Command,
    args: Record<string, unknown>,
    executionId: string,
    request: ExecutionRequest,
    timing: { status: ExecutionStatus; started: number; deadline: number; timeLimitMs: number; planDigest?: string },
  ): AttemptRecord {
    const sensitive = command.sensitive ?? [];
    const scrub = secretScrubber(args, sensitive);
    const argsHmac = sensitiveHmacs(this.digestKey.current(), command.name, args, sensitive);
    return {
      executionId,
      command: command.name,
      status: timing.status,
      dryRun: request.dryRun,
      actor: request.actor,
      source: request.source,
      args: capJson(scrubValue(redactArguments(args, sensitive), scrub), auditLimits.argsBytes) as Record<string, unknown>,
      ...(Object.keys(argsHmac).length ? { argsHmac } : {}),
      ...(timing.planDigest ? { planDigest: timing.planDigest } : {}),
      startedAt: new Date(timing.started).toISOString(),
      deadline: new Date(timing.deadline).toISOString(),
      timeLimitMs: timing.timeLimitMs,
      ...(request.idempotencyKey ? { idempotencyKey: request.idempotencyKey.slice(0, 256) } : {}),
    };
  }
}

/**
 * What an execution ended with, from its audit record: the response, or the
 * error, as the caller would have received it; undefined while it may still run.
 */
export function finalOutcome(record: ExecutionRecord): ExecutionResponse | ManageError | undefined {
  const { executionId, command, status } = record;
  if (status === 'succeeded' || status === 'planned') {
    const { result = null, output = [], startedAt, finishedAt = startedAt, durationMs = 0 } = record;
    return { executionId, command, status, result, output, startedAt, finishedAt, durationMs, ...(record.dryRun ? { dryRun: true as const } : {}) };
  }
  switch (status) {
    case 'failed':
      return errorFromCode(record.error?.code ?? 'CommandFailed', record.error?.message ?? 'Command failed.', executionId);
    case 'timed_out':
      return errorFromCode('CommandTimedOut', record.error?.message ?? `Execution ${executionId} did not finish within its time limit.`, executionId);
    case 'rejected':
      return errorFromCode('Forbidden', `Execution ${executionId} was rejected.`, executionId);
    case 'expired':
      return errorFromCode('Forbidden', `Execution ${executionId} expired unapproved.`, executionId);
    default:
      return undefined;
  }
}
