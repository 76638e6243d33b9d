/**
 * The one path every run takes, over HTTP or by direct invocation:
 * allowlist → load → authorize → validate → audit attempt → run under a time
 * limit → audit outcome. Authentication happens before, in the adapter that
 * knows the transport; everything after it is here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Actor, Command, CommandLoader } from '../command.js';
import { commandDefaults } from '../command.js';
import type { ManageConfig } from '../config.js';
import {
  AuditUnavailable,
  CommandFailed,
  CommandNotAllowed,
  CommandTimedOut,
  Conflict,
  Forbidden,
  InternalError,
  InvalidRequest,
  ManageError,
  NotFound,
  errorFromCode,
  toManageError,
  truncate,
} from '../errors.js';
import { EXECUTION_ID_PATTERN, newExecutionId } from '../ids.js';
import { describeError, type Logger } from '../log.js';
import { auditLimits, capJson, redactArguments, scrubValue, secretScrubber } from '../redact.js';
import { validateArguments } from '../validation.js';
import { runWithTimeLimit } from './run.js';
import { CommandLeases, IdempotencyKeys, planDigest } from './rails.js';
import type { StateStore } from '../stores/state/store.js';
import type { TaskReporter, WorkerLauncher } from '../handler/worker.js';
import { argumentHmac, chainsOf, verifyChain } from '../stores/audit/chain.js';
import {
  InvalidCursorError,
  actorKey,
  type AttemptRecord,
  type AuditEntry,
  type AuditStore,
  type ExecutionRecord,
  type ExecutionSource,
  type ExecutionStatus,
  type OutcomeRecord,
} from '../stores/audit/store.js';

export interface ExecutionRequest {
  command: string;
  data: Record<string, unknown>;
  dryRun: boolean;
  actor: Actor;
  source: ExecutionSource;
  /** The transport's own bound on the run (HTTP window, Lambda time left); the command's limit may be lower. */
  maxTimeMs: number;
  /** A retry with the same key, actor and command returns the first outcome instead of running again. */
  idempotencyKey?: string;
  /** Answer at once (202 `accepted`) and run in a worker invocation. */
  respondAsync?: boolean;
  /** A Step Functions callback token: answer at once, run in a worker, report the outcome to the token. */
  taskToken?: string;
}

/** The 200 body of CONTRACT §2, and what a direct invocation returns. */
export interface ExecutionResponse {
  executionId: string;
  command: string;
  status: ExecutionStatus;
  result: unknown;
  output: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dryRun?: true;
  auditRecorded?: false;
}

/** The 202 body: the execution exists and waits (for an approver, or for its worker). */
export interface PendingResponse {
  executionId: string;
  command: string;
  status: 'awaiting_approval' | 'accepted';
  requestedAt: string;
  /** Until when an approval may come. */
  expiresAt?: string;
  /** What the approver approves: this command with exactly these arguments. */
  planDigest?: string;
  approvers?: string[];
}

export type ExecuteResult = ExecutionResponse | PendingResponse;

/** The answer to an approval decision that rejected the request. */
export interface RejectedResponse {
  executionId: string;
  command: string;
  status: 'rejected';
  decidedBy: string;
  decidedAt: string;
}

export interface CommandSummary {
  name: string;
  description: string;
  schema: unknown;
  timeLimitMs: number;
  exclusive: boolean;
  dryRun: boolean;
  approvers?: string[];
  /** Arguments the console shows as password inputs (the command's `sensitive`). */
  sensitive?: string[];
}

export interface PipelineDependencies {
  config: ManageConfig;
  audit: AuditStore;
  state: StateStore;
  commands: Readonly<Record<string, CommandLoader>>;
  logger: Logger;
  /** Starts worker invocations for accepted executions; without one, async requests are refused. */
  launcher?: WorkerLauncher;
  /** Reports outcomes to Step Functions task tokens. */
  reporter?: TaskReporter;
  now?: () => number;
}

export const pipelineDefaults = {
  /** Delays before each try of the outcome write: it must not be lost to one throttle. */
  outcomeRetryDelaysMs: [0, 100, 400],
  /** Past the run's bound, how long the outcome write may still be retried before the caller is answered. */
  outcomeWriteMarginMs: 1000,
  /**
   * A lease outlives its run's time limit by this much, then frees itself if the holder died.
   * It covers the attempt write that comes after the lease (an append may take up to its 5 s
   * budget plus a request timeout) and the outcome write.
   */
  leaseMarginMs: 15_000,
  /** How long an accepted execution may wait for its worker to start before it reads as timed out. */
  workerStartGraceMs: 60_000,
  /** The longest a worker can run: Lambda's 15 minutes, less time to record the outcome. */
  workerMaxTimeMs: 900_000 - 3000,
  listLimit: 20,
  maxListLimit: 100,
} as const;

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
}

/** One run of a command, as the pipeline records it. */
interface RunSpec {
  command: Command;
  args: Record<string, unknown>;
  executionId: string;
  /** Who asked for it (for an approved run: the requester, not the approver). */
  actor: Actor;
  dryRun: boolean;
  timeLimitMs: number;
  started: number;
  /** When the caller stops waiting (the HTTP window): the outcome write is not retried past it. */
  answerBy?: number;
}

const COMMAND_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const pendingKey = (executionId: string) => `PENDING#${executionId}`;
/** Kept apart from the pending run so that a retried task can hand over a new token at any time. */
const taskKey = (executionId: string) => `TASK#${executionId}`;

export class Pipeline {
  private readonly loaded = new Map<string, Promise<Command>>();
  private readonly now: () => number;
  private readonly idempotency: IdempotencyKeys;
  private readonly leases: CommandLeases;

  constructor(private readonly deps: PipelineDependencies) {
    this.now = deps.now ?? Date.now;
    this.idempotency = new IdempotencyKeys(deps.state, deps.config.idempotencyTtlSeconds * 1000, this.now);
    this.leases = new CommandLeases(deps.state, this.now);
  }

  /** Run one command for an authenticated actor. Throws a ManageError on every refusal or failure. */
  async execute(request: ExecutionRequest): Promise<ExecuteResult> {
    // The transport's bound counts from here: claims, leases and the attempt write eat into it too.
    const notAfter = this.now() + request.maxTimeMs;
    const command = await this.allowedCommand(request.command);
    this.authorize(command, request.actor);
    const args = validateArguments(command.args, request.data);
    if (request.dryRun && !command.plan) {
      throw new InvalidRequest(`Command "${command.name}" has no dry run: it declares no plan.`);
    }
    const executionId = newExecutionId(this.now());
    if (request.idempotencyKey === undefined) return this.start(command, args, executionId, request, notAfter);

    const scope = { actorKey: actorKey(request.actor), command: command.name, key: request.idempotencyKey };
    const fingerprint = IdempotencyKeys.fingerprint(request.data, request.dryRun);
    const claim = await this.guardState(() => this.idempotency.claim(scope, fingerprint, executionId));
    switch (claim.kind) {
      case 'mismatch':
        throw new Conflict('This idempotency key was already used with other arguments.');
      case 'in_flight': {
        if (request.taskToken) {
          await this.rebindTask(claim.executionId, request.taskToken);
          return { executionId: claim.executionId, command: command.name, status: 'accepted', requestedAt: new Date(this.now()).toISOString() };
        }
        // The first request may have ended without remembering its outcome (its instance died, the state
        // store failed): the audit knows, and a retry gets what it says rather than a day of 409s.
        const record = await this.readAudit(() => this.deps.audit.getExecution(claim.executionId));
        const outcome = record && finalOutcome(record);
        if (outcome instanceof ManageError) throw outcome;
        if (outcome) return outcome;
        throw new Conflict(`A request with this idempotency key is still in progress (execution ${claim.executionId}).`, claim.executionId);
      }
      case 'replay':
        if (claim.outcome.kind === 'response') {
          const body = claim.outcome.body as ExecuteResult;
          if (request.taskToken) await this.rebindTask(body.executionId, request.taskToken);
          return body;
        }
        throw Object.assign(errorFromCode(claim.outcome.code, claim.outcome.message, claim.outcome.executionId), claim.outcome.auditRecorded === false ? { auditRecorded: false } : {});
    }

    try {
      const result = await this.start(command, args, executionId, request, notAfter);
      await this.bestEffort('idempotency.complete_failed', () =>
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
        await this.bestEffort('idempotency.complete_failed', () => this.idempotency.complete(scope, fingerprint, executionId, remembered));
      } else {
        // It never ran: a retry may run it.
        await this.bestEffort('idempotency.release_failed', () => this.idempotency.release(scope, executionId));
      }
      throw error;
    }
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
    if (!EXECUTION_ID_PATTERN.test(executionId)) throw new NotFound('No such execution.');
    const pending = await this.guardState(() => this.deps.state.get<PendingRun>(pendingKey(executionId)));
    if (!pending) {
      const record = await this.readAudit(() => this.deps.audit.getExecution(executionId));
      if (!record || !(this.mayRead(record, approver) || this.approversOf(record.command).some((g) => inGroups(approver, g)))) {
        throw new NotFound('No such execution.');
      }
      throw new Conflict(
        record.status === 'awaiting_approval'
          ? `Execution ${executionId} cannot be decided now; try again.`
          : `Execution ${executionId} is not awaiting approval: it is ${record.status}.`,
      );
    }
    const run = pending.value;
    if (run.kind !== 'approval') throw new Conflict(`Execution ${executionId} is not awaiting approval.`);
    if (!run.approvers.some((group) => inGroups(approver, group))) {
      throw new Forbidden(`Only members of ${run.approvers.join(', ')} may decide on this execution.`);
    }
    if (actorKey(approver) === actorKey(run.requester)) {
      throw new Forbidden('You cannot decide on your own request: a second person must (two-person rule).');
    }
    if (options.planDigest !== undefined && options.planDigest !== run.planDigest) {
      throw new Conflict('The plan you reviewed is not the plan awaiting approval.');
    }
    if (planDigest(run.command, run.args) !== run.planDigest) {
      this.deps.logger.log('error', 'approval.digest_mismatch', { executionId, command: run.command });
      throw new InternalError();
    }
    // The conditional delete is the lock: of two approvers racing, one decides.
    const consumed = await this.guardState(() => this.deps.state.delete<PendingRun>(pendingKey(executionId), executionId, { liveOnly: true }));
    if (!consumed) throw new Conflict(`Execution ${executionId} was already decided, or its approval expired.`);

    const decidedAt = new Date(this.now()).toISOString();
    const logFields = { executionId, command: run.command, actor: actorKey(approver), decision };
    try {
      await this.appendOrRefuse({ kind: 'decision', record: { executionId, command: run.command, decision, by: approver, at: decidedAt } }, logFields);
    } catch (error) {
      // Undecided after all: put the request back so that it can still be decided.
      await this.bestEffort('approval.restore_failed', () => this.deps.state.create(consumed));
      throw error;
    }
    this.deps.logger.log('info', 'approval.decided', logFields);
    if (decision === 'rejected') {
      if (run.reportsToTask) await this.report(executionId, new Forbidden(`Execution ${executionId} was rejected by ${actorKey(approver)}.`));
      return { executionId, command: run.command, status: 'rejected', decidedBy: actorKey(approver), decidedAt };
    }
    const command = await this.allowedCommand(run.command);
    const launcher = this.deps.launcher;
    if (launcher && (run.reportsToTask || (command.timeLimitMs ?? commandDefaults.timeLimitMs) > options.maxTimeMs)) {
      // Too long for this request (or a Step Functions task waits): the approved run goes to a worker.
      const deadline = this.now() + pipelineDefaults.workerStartGraceMs + Math.min(command.timeLimitMs ?? commandDefaults.timeLimitMs, pipelineDefaults.workerMaxTimeMs);
      await this.guardState(() =>
        this.deps.state.create<PendingRun>({ pk: pendingKey(executionId), owner: executionId, expiresAt: deadline, value: { ...run, kind: 'async' } }),
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
    const logFields = { executionId };
    try {
      const pending = await this.deps.state.get<PendingRun>(pendingKey(executionId));
      // Only accepted runs: a forged worker event cannot skip an approval.
      if (pending?.value.kind !== 'async') {
        this.deps.logger.log('warn', 'worker.nothing_to_run', logFields);
        return;
      }
      const consumed = await this.deps.state.delete<PendingRun>(pendingKey(executionId), executionId, { liveOnly: true });
      if (!consumed) {
        this.deps.logger.log('warn', 'worker.already_taken', logFields);
        return;
      }
      // Its outcome is in the audit (and reported to its task token): nobody else awaits it.
      await this.runDeferred(executionId, consumed.value, Math.min(maxTimeMs, pipelineDefaults.workerMaxTimeMs)).catch(() => undefined);
    } catch (error) {
      this.deps.logger.log('error', 'worker.failed', { ...logFields, error: describeError(error) });
    }
  }

  /** Runs an execution decided earlier (approved, or accepted for a worker) and reports to its task token. */
  private async runDeferred(executionId: string, run: PendingRun, maxTimeMs: number): Promise<ExecutionResponse> {
    try {
      const command = await this.allowedCommand(run.command);
      const timeLimitMs = this.timeLimit(command, maxTimeMs);
      const response = await this.runExclusive(command, executionId, timeLimitMs, async () => {
        const started = this.now();
        const start = { executionId, command: command.name, startedAt: new Date(started).toISOString(), deadline: new Date(started + timeLimitMs).toISOString(), timeLimitMs };
        await this.appendOrRefuse({ kind: 'start', record: start }, { executionId, command: command.name });
        return this.runAndRecord({ command, args: run.args, executionId, actor: run.requester, dryRun: run.dryRun, timeLimitMs, started });
      });
      if (run.reportsToTask) await this.report(executionId, response);
      return response;
    } catch (error) {
      const failure = toManageError(error);
      if (!failure.executionId) {
        // Refused before it ran (no longer allowed, exclusive and busy, audit down): close the execution.
        await this.closeUnrun(executionId, run.command, failure);
        failure.executionId = executionId;
      }
      if (run.reportsToTask) await this.report(executionId, failure);
      throw failure;
    }
  }

  /**
   * Reports an outcome to the task token bound to the execution. If a retried
   * task bound a new token meanwhile, that one is told too.
   */
  private async report(executionId: string, outcome: ExecutionResponse | ManageError): Promise<void> {
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
      await this.bestEffort('task.report_failed', () =>
        outcome instanceof ManageError ? reporter.fail(token, outcome.name, outcome.message) : reporter.succeed(token, outcome),
      );
    }
  }

  /** A retried Step Functions task brings a new token for an execution already under way or done. */
  private async rebindTask(executionId: string, taskToken: string): Promise<void> {
    const item = { pk: taskKey(executionId), owner: executionId, expiresAt: this.now() + pipelineDefaults.workerStartGraceMs + 2 * pipelineDefaults.workerMaxTimeMs, value: { taskToken } };
    const replaced = await this.guardState(() => this.deps.state.replace(item));
    if (!replaced) await this.guardState(() => this.deps.state.create(item));
    // Finished already: nobody else will report to this token.
    const record = await this.readAudit(() => this.deps.audit.getExecution(executionId));
    const outcome = record && finalOutcome(record);
    if (outcome) await this.report(executionId, outcome);
  }

  private async bindTask(executionId: string, taskToken: string, until: number): Promise<void> {
    await this.guardState(() => this.deps.state.create({ pk: taskKey(executionId), owner: executionId, expiresAt: until + pipelineDefaults.workerMaxTimeMs, value: { taskToken } }));
  }

  /**
   * Records the first record of an execution that runs later, and keeps what the
   * later run needs (its full arguments, its task token) in the state store.
   */
  private async defer(
    attempt: AttemptRecord,
    request: ExecutionRequest,
    run: Pick<PendingRun, 'kind' | 'args' | 'dryRun' | 'approvers'>,
  ): Promise<Record<string, unknown>> {
    const { executionId, command } = attempt;
    const logFields = { executionId, command, actor: actorKey(request.actor), channel: request.source.channel };
    await this.appendOrRefuse({ kind: 'attempt', record: attempt }, logFields);
    const expiresAt = Date.parse(attempt.deadline);
    try {
      await this.storePending(attempt, request, run, expiresAt);
    } catch (error) {
      // Recorded but never to run: close it, and leave nothing that could still be approved or run.
      const failure = toManageError(error);
      await this.closeUnrun(executionId, command, failure);
      await this.bestEffort('pending.cleanup_failed', () => this.deps.state.delete(pendingKey(executionId), executionId));
      throw failure;
    }
    return logFields;
  }

  private async storePending(
    attempt: AttemptRecord,
    request: ExecutionRequest,
    run: Pick<PendingRun, 'kind' | 'args' | 'dryRun' | 'approvers'>,
    expiresAt: number,
  ): Promise<void> {
    const { executionId, command } = attempt;
    await this.guardState(() =>
      this.deps.state.create<PendingRun>({
        pk: pendingKey(executionId),
        owner: executionId,
        expiresAt,
        value: {
          ...run,
          command,
          planDigest: attempt.planDigest ?? planDigest(command, run.args),
          requester: request.actor,
          ...(request.taskToken ? { reportsToTask: true } : {}),
        },
      }),
    );
    if (request.taskToken) await this.bindTask(executionId, request.taskToken, expiresAt);
  }

  /** The outcome of an execution that was recorded but never ran. */
  private async closeUnrun(executionId: string, command: string, failure: ManageError): Promise<void> {
    await this.bestEffort('audit.outcome_failed', () =>
      this.deps.audit.append({
        kind: 'outcome',
        record: { executionId, command, status: 'failed', finishedAt: new Date(this.now()).toISOString(), durationMs: 0, error: { code: failure.name, message: failure.message }, output: [] },
      }),
    );
  }

  /** Records the execution as accepted, then hands it to a worker invocation. */
  private async accept(command: Command, args: Record<string, unknown>, executionId: string, request: ExecutionRequest): Promise<PendingResponse> {
    const launcher = this.deps.launcher;
    if (!launcher) {
      this.deps.logger.log('error', 'worker.unavailable', { command: command.name });
      throw new InternalError();
    }
    if (this.isExclusive(command)) {
      // Refused now rather than accepted and failed later in the worker (which still checks, for races).
      const holder = await this.guardState(() => this.leases.holder(command.name));
      if (holder !== undefined) throw this.busy(command, holder);
    }
    const timeLimitMs = Math.min(command.timeLimitMs ?? commandDefaults.timeLimitMs, pipelineDefaults.workerMaxTimeMs);
    const accepted = this.now();
    const deadline = accepted + pipelineDefaults.workerStartGraceMs + timeLimitMs;
    const attempt = this.attemptRecord(command, args, executionId, request, { status: 'accepted', started: accepted, deadline, timeLimitMs });
    const logFields = await this.defer(attempt, request, { kind: 'async', args, dryRun: request.dryRun, approvers: [] });
    await this.launchWorker(launcher, executionId, command.name, logFields);
    this.deps.logger.log('info', 'execution.accepted', logFields);
    return { executionId, command: command.name, status: 'accepted', requestedAt: attempt.startedAt };
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
        const failure = new CommandFailed('The worker could not be started; the command did not run.', { executionId });
        await this.closeUnrun(executionId, command, failure);
        throw failure;
      }
    }
  }

  /** Checks every command's audit chain (auditors only). */
  async verifyAudit(actor: Actor, query: { command?: string; since?: string }) {
    if (!this.isAuditor(actor)) throw new Forbidden('Only auditors may verify the audit trail.');
    if (query.command !== undefined && !COMMAND_NAME.test(query.command)) throw new InvalidRequest('command is not a command name.');
    if (query.since !== undefined && Number.isNaN(Date.parse(query.since))) throw new InvalidRequest('since must be an ISO-8601 date.');
    const commands = query.command ? [query.command] : Object.keys(this.deps.commands).sort();
    const chains = [];
    for (const chain of commands.flatMap(chainsOf)) {
      const report = await this.readAudit(() =>
        verifyChain(chain, this.deps.audit.readChain(chain, query.since ? { since: query.since } : {}), {
          ...(this.deps.config.auditHmacKey ? { key: this.deps.config.auditHmacKey } : {}),
          fromStart: query.since === undefined,
        }),
      );
      if (report.records > 0 || report.problems.length > 0) chains.push(report);
    }
    const problems = chains.flatMap((chain) => chain.problems);
    return { ok: problems.length === 0, keyed: Boolean(this.deps.config.auditHmacKey), chains, problems };
  }

  private async start(
    command: Command,
    args: Record<string, unknown>,
    executionId: string,
    request: ExecutionRequest,
    notAfter: number,
  ): Promise<ExecuteResult> {
    const approvers = this.approversOf(command.name, command);
    if (approvers.length > 0 && !request.dryRun) return this.requestApproval(command, args, executionId, request, approvers);
    if (request.respondAsync || request.taskToken) return this.accept(command, args, executionId, request);

    const timeLimitMs = this.timeLimit(command, request.maxTimeMs);
    const started = this.now();
    const attempt = this.attemptRecord(command, args, executionId, request, {
      // Even a dry run is `running` until its outcome says `planned`: a crashed one must not read as done.
      status: 'running',
      started,
      deadline: started + timeLimitMs,
      timeLimitMs,
    });
    const logFields = { executionId, command: command.name, actor: actorKey(request.actor), channel: request.source.channel };
    return this.runExclusive(command, executionId, timeLimitMs, async () => {
      await this.appendOrRefuse({ kind: 'attempt', record: attempt }, logFields);
      const remaining = Math.max(1, Math.min(timeLimitMs, notAfter - this.now()));
      return this.runAndRecord({
        command,
        args,
        executionId,
        actor: request.actor,
        dryRun: request.dryRun,
        timeLimitMs: remaining,
        started,
        answerBy: notAfter + pipelineDefaults.outcomeWriteMarginMs,
      });
    });
  }

  private async requestApproval(
    command: Command,
    args: Record<string, unknown>,
    executionId: string,
    request: ExecutionRequest,
    approvers: string[],
  ): Promise<PendingResponse> {
    const requested = this.now();
    const expiresAt = requested + this.deps.config.approvalTtlSeconds * 1000;
    const digest = planDigest(command.name, args);
    const attempt = this.attemptRecord(command, args, executionId, request, {
      status: 'awaiting_approval',
      started: requested,
      deadline: expiresAt,
      timeLimitMs: command.timeLimitMs ?? commandDefaults.timeLimitMs,
      planDigest: digest,
    });
    const logFields = await this.defer(attempt, request, { kind: 'approval', args, dryRun: false, approvers });
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

  private attemptRecord(
    command: Command,
    args: Record<string, unknown>,
    executionId: string,
    request: ExecutionRequest,
    timing: { status: ExecutionStatus; started: number; deadline: number; timeLimitMs: number; planDigest?: string },
  ): AttemptRecord {
    const sensitive = command.sensitive ?? [];
    const scrub = secretScrubber(args, sensitive);
    const key = this.deps.config.auditHmacKey;
    const argsHmac = key
      ? Object.fromEntries(sensitive.filter((name) => Object.hasOwn(args, name)).map((name) => [name, argumentHmac(key, command.name, name, args[name])]))
      : {};
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

  /** Holds the command's lease around `run` when the command is exclusive. */
  private async runExclusive<T>(command: Command, executionId: string, timeLimitMs: number, run: () => Promise<T>): Promise<T> {
    if (!this.isExclusive(command)) return run();
    const holder = await this.guardState(() => this.leases.acquire(command.name, executionId, timeLimitMs + pipelineDefaults.leaseMarginMs));
    if (holder !== undefined) throw this.busy(command, holder);
    try {
      return await run();
    } finally {
      await this.bestEffort('lease.release_failed', () => this.leases.release(command.name, executionId));
    }
  }

  /** Runs the command under its time limit and records the outcome; the attempt (or start) is already recorded. */
  private async runAndRecord(spec: RunSpec): Promise<ExecutionResponse> {
    try {
      return await this.recordRun(spec);
    } catch (error) {
      // Past the attempt record, every failure belongs to this execution: a retry must not run it again.
      const failure = toManageError(error);
      failure.executionId ??= spec.executionId;
      throw failure;
    }
  }

  private async recordRun({ command, args, executionId, actor, dryRun, timeLimitMs, started, answerBy }: RunSpec): Promise<ExecutionResponse> {
    const scrub = secretScrubber(args, command.sensitive ?? []);
    const logFields = { executionId, command: command.name, actor: actorKey(actor) };
    this.deps.logger.log('info', 'execution.started', { ...logFields, dryRun, timeLimitMs });

    const run = await runWithTimeLimit(command, args, { executionId, actor, dryRun, timeLimitMs, now: this.now });
    const finished = this.now();
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
    const auditRecorded = await this.recordOutcome(outcome, logFields, answerBy);
    this.deps.logger.log(run.status === 'succeeded' || run.status === 'planned' ? 'info' : 'warn', 'execution.finished', {
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

  /** The commands this actor may run, with the JSON Schema of their `data`. */
  async listCommands(actor: Actor): Promise<CommandSummary[]> {
    const summaries: CommandSummary[] = [];
    for (const name of [...this.deps.config.allowList].sort()) {
      const command = await this.allowedCommand(name);
      if (!this.mayRun(command, actor)) continue;
      const approvers = this.approversOf(name, command);
      summaries.push({
        name,
        description: command.description,
        schema: command.args,
        timeLimitMs: command.timeLimitMs ?? commandDefaults.timeLimitMs,
        exclusive: this.isExclusive(command),
        dryRun: Boolean(command.plan),
        ...(approvers.length ? { approvers } : {}),
        ...(command.sensitive?.length ? { sensitive: [...command.sensitive] } : {}),
      });
    }
    return summaries;
  }

  /** One execution, if this actor may read it; others' executions are as unknown as missing ones. */
  async getExecution(executionId: string, actor: Actor): Promise<ExecutionRecord> {
    if (!EXECUTION_ID_PATTERN.test(executionId)) throw new NotFound('No such execution.');
    const record = await this.readAudit(() => this.deps.audit.getExecution(executionId));
    if (!record || !(this.mayRead(record, actor) || (await this.mayReview(record, actor)))) throw new NotFound('No such execution.');
    return record;
  }

  /** An approver may read a request that waits for their group (to see what they approve), and what they decided. */
  private async mayReview(record: ExecutionRecord, actor: Actor): Promise<boolean> {
    if (actor.kind !== 'token') return false;
    if (record.decision && actorKey(record.decision.by) === actorKey(actor)) return true;
    if (record.status !== 'awaiting_approval') return false;
    const command = await this.allowedCommand(record.command).catch(() => undefined);
    return this.approversOf(record.command, command).some((group) => inGroups(actor, group));
  }

  /** Executions newest first: all of them for auditors, one's own for everyone else. */
  async listExecutions(actor: Actor, query: { command?: string; limit?: string; cursor?: string }) {
    const limit = query.limit === undefined ? pipelineDefaults.listLimit : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > pipelineDefaults.maxListLimit || !/^\d+$/.test(query.limit ?? '1')) {
      throw new InvalidRequest(`limit must be a whole number from 1 to ${pipelineDefaults.maxListLimit}.`);
    }
    if (query.command !== undefined && !COMMAND_NAME.test(query.command)) {
      throw new InvalidRequest('command is not a command name.');
    }
    try {
      return await this.readAudit(() =>
        this.deps.audit.listExecutions({
          ...(this.isAuditor(actor) ? {} : { actorKey: actorKey(actor) }),
          ...(query.command ? { command: query.command } : {}),
          ...(query.cursor ? { cursor: query.cursor } : {}),
          limit,
        }),
      );
    } catch (error) {
      if (error instanceof AuditUnavailable && error.cause instanceof InvalidCursorError) {
        throw new InvalidRequest('cursor is not valid for this query.');
      }
      throw error;
    }
  }

  /** Resolves an allow-listed name to its command; anything else, existing or not, is refused alike. */
  private allowedCommand(name: string): Promise<Command> {
    if (!COMMAND_NAME.test(name) || !this.deps.config.allowList.has(name) || !Object.hasOwn(this.deps.commands, name)) {
      return Promise.reject(new CommandNotAllowed(name));
    }
    let command = this.loaded.get(name);
    if (!command) {
      command = this.deps.commands[name]!().then(
        (module) => ({ ...module.default, name }),
        (error) => {
          this.loaded.delete(name);
          this.deps.logger.log('error', 'command.load_failed', { command: name, error: describeError(error) });
          throw new InternalError({ cause: error });
        },
      );
      this.loaded.set(name, command);
    }
    return command;
  }

  private authorize(command: Command, actor: Actor): void {
    if (!this.mayRun(command, actor)) {
      throw new Forbidden(`You lack a group or scope that command "${command.name}" requires.`);
    }
  }

  /** Group and scope rules are token claims; a direct invoker is trusted as far as the allowlist allows. */
  private mayRun(command: Command, actor: Actor): boolean {
    if (actor.kind === 'invoke') return true;
    const groupRules = [this.deps.config.commandGroups.get(command.name), command.groups].filter(
      (groups): groups is string[] => Array.isArray(groups) && groups.length > 0,
    );
    // Config can only tighten what the command declares: each rule must be met.
    const groupsMet = groupRules.every((groups) => groups.some((group) => actor.groups.includes(group)));
    const scopesMet = (command.scopes ?? []).every((scope) => actor.scopes.includes(scope));
    return groupsMet && scopesMet;
  }

  private isAuditor(actor: Actor): boolean {
    return this.deps.config.auditorGroups.some((group) => inGroups(actor, group));
  }

  private mayRead(record: ExecutionRecord, actor: Actor): boolean {
    return this.isAuditor(actor) || actorKey(record.actor) === actorKey(actor);
  }

  private isExclusive(command: Command): boolean {
    return Boolean(command.exclusive || this.deps.config.exclusive.has(command.name));
  }

  private busy(command: Command, holder: string): Conflict {
    return new Conflict(`Command "${command.name}" is exclusive and already running (execution ${holder}).`, holder);
  }

  /** Approver groups: the config's for this command if it names any, else the command's own. */
  private approversOf(name: string, command?: Command): string[] {
    return [...(this.deps.config.approval.get(name) ?? command?.approvers ?? [])];
  }

  private timeLimit(command: Command, maxTimeMs: number): number {
    return Math.max(1, Math.min(command.timeLimitMs ?? commandDefaults.timeLimitMs, maxTimeMs));
  }

  /** Writes a record that must exist before anything happens: if it cannot be written, nothing happens. */
  private async appendOrRefuse(entry: AuditEntry, logFields: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.audit.append(entry);
    } catch (error) {
      this.deps.logger.log('error', 'audit.append_failed', { ...logFields, kind: entry.kind, error: describeError(error) });
      throw new AuditUnavailable({ cause: error });
    }
  }

  /** The state store guards runs: when it cannot answer, nothing runs (fail closed). */
  private async guardState<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      this.deps.logger.log('error', 'state.unavailable', { error: describeError(error) });
      throw new AuditUnavailable({ cause: error, message: 'The state store cannot be reached; the command was not run.' });
    }
  }

  private async bestEffort(event: string, operation: () => Promise<unknown>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      this.deps.logger.log('warn', event, { error: describeError(error) });
    }
  }

  private async readAudit<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      this.deps.logger.log('error', 'audit.read_failed', { error: describeError(error) });
      throw new AuditUnavailable({ cause: error, message: 'The audit store cannot be read.' });
    }
  }

  /** True if recorded. The attempt record already proves the run; a lost outcome is reported, not hidden. */
  private async recordOutcome(outcome: OutcomeRecord, logFields: Record<string, unknown>, answerBy?: number): Promise<boolean> {
    let lastError: unknown;
    for (const delay of pipelineDefaults.outcomeRetryDelaysMs) {
      // A caller who gave up hears nothing: answer in time, with `auditRecorded: false`.
      if (delay && answerBy !== undefined && this.now() + delay > answerBy) break;
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
}

/**
 * What an execution ended with, from its audit record: the response, or the
 * error, as the caller would have received it; undefined while it may still run.
 */
function finalOutcome(record: ExecutionRecord): ExecutionResponse | ManageError | undefined {
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

function inGroups(actor: Actor, group: string): boolean {
  return actor.kind === 'token' && actor.groups.includes(group);
}
