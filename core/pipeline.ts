/**
 * The one path every run takes, over HTTP or by direct invocation:
 * allowlist → load → authorize → validate → audit attempt → run under a time
 * limit → audit outcome. Authentication happens before, in the adapter that
 * knows the transport; everything after it is here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Actor, Command, CommandContext, CommandLoader } from './command.js';
import { commandDefaults } from './command.js';
import type { ManageConfig } from './config.js';
import {
  AuditUnavailable,
  CommandFailed,
  CommandNotAllowed,
  CommandTimedOut,
  Forbidden,
  InternalError,
  InvalidRequest,
  NotFound,
  truncate,
} from './errors.js';
import { EXECUTION_ID_PATTERN, newExecutionId } from './ids.js';
import { describeError, type Logger } from './log.js';
import { auditLimits, capJson, redactArguments, scrubValue, secretScrubber } from './redact.js';
import { validateArguments } from './validation.js';
import {
  InvalidCursorError,
  actorKey,
  type AttemptRecord,
  type AuditStore,
  type ExecutionRecord,
  type ExecutionSource,
  type ExecutionStatus,
  type OutcomeRecord,
} from './audit/store.js';

export interface ExecutionRequest {
  command: string;
  data: Record<string, unknown>;
  dryRun: boolean;
  actor: Actor;
  source: ExecutionSource;
  /** The transport's own bound on the run (HTTP window, Lambda time left); the command's limit may be lower. */
  maxTimeMs: number;
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

export interface CommandSummary {
  name: string;
  description: string;
  schema: unknown;
}

export interface PipelineDependencies {
  config: ManageConfig;
  audit: AuditStore;
  commands: Readonly<Record<string, CommandLoader>>;
  logger: Logger;
  now?: () => number;
}

export const pipelineDefaults = {
  /** Delays before each try of the outcome write: it must not be lost to one throttle. */
  outcomeRetryDelaysMs: [0, 100, 400],
  listLimit: 20,
  maxListLimit: 100,
} as const;

const COMMAND_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export class Pipeline {
  private readonly loaded = new Map<string, Promise<Command>>();
  private readonly now: () => number;

  constructor(private readonly deps: PipelineDependencies) {
    this.now = deps.now ?? Date.now;
  }

  /** Run one command for an authenticated actor. Throws a ManageError on every refusal or failure. */
  async execute(request: ExecutionRequest): Promise<ExecutionResponse> {
    const command = await this.allowedCommand(request.command);
    this.authorize(command, request.actor);
    const args = validateArguments(command.args, request.data);
    if (request.dryRun && !command.plan) {
      throw new InvalidRequest(`Command "${command.name}" has no dry run: it declares no plan.`);
    }

    const sensitive = command.sensitive ?? [];
    const scrub = secretScrubber(args, sensitive);
    const started = this.now();
    const timeLimitMs = Math.max(1, Math.min(command.timeLimitMs ?? commandDefaults.timeLimitMs, request.maxTimeMs));
    const attempt: AttemptRecord = {
      executionId: newExecutionId(started),
      command: command.name,
      status: request.dryRun ? 'planned' : 'running',
      dryRun: request.dryRun,
      actor: request.actor,
      source: request.source,
      args: capJson(scrubValue(redactArguments(args, sensitive), scrub), auditLimits.argsBytes) as Record<string, unknown>,
      startedAt: new Date(started).toISOString(),
      deadline: new Date(started + timeLimitMs).toISOString(),
      timeLimitMs,
    };
    const { executionId } = attempt;
    const logFields = { executionId, command: command.name, actor: actorKey(request.actor), channel: request.source.channel };

    try {
      await this.deps.audit.recordAttempt(attempt);
    } catch (error) {
      this.deps.logger.log('error', 'audit.attempt_failed', { ...logFields, error: describeError(error) });
      throw new AuditUnavailable({ cause: error });
    }
    this.deps.logger.log('info', 'execution.started', { ...logFields, dryRun: request.dryRun, timeLimitMs });

    const run = await this.runWithTimeLimit(command, args, executionId, request.actor, request.dryRun, timeLimitMs);
    const finished = this.now();
    const output = run.output.map((line) => truncate(scrub(line), auditLimits.outputLineChars));
    const result = scrubValue(run.result, scrub);
    const errorMessage = run.error === undefined ? undefined : truncate(scrub(run.error), auditLimits.errorMessageChars);
    const outcome: OutcomeRecord = {
      executionId,
      status: run.status,
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - started,
      ...(run.status === 'succeeded' || run.status === 'planned' ? { result: capJson(result, auditLimits.resultBytes) } : {}),
      ...(errorMessage !== undefined
        ? { error: { code: run.status === 'timed_out' ? 'CommandTimedOut' : 'CommandFailed', message: errorMessage } }
        : {}),
      output: output.slice(0, auditLimits.outputLines),
    };
    const auditRecorded = await this.recordOutcome(outcome, logFields);
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
      startedAt: attempt.startedAt,
      finishedAt: outcome.finishedAt,
      durationMs: outcome.durationMs,
      ...(request.dryRun ? { dryRun: true as const } : {}),
      ...(auditRecorded ? {} : { auditRecorded: false as const }),
    };
  }

  /** The commands this actor may run, with the JSON Schema of their `data`. */
  async listCommands(actor: Actor): Promise<CommandSummary[]> {
    const summaries: CommandSummary[] = [];
    for (const name of [...this.deps.config.allowList].sort()) {
      const command = await this.allowedCommand(name);
      if (this.mayRun(command, actor)) {
        summaries.push({ name, description: command.description, schema: command.args });
      }
    }
    return summaries;
  }

  /** One execution, if this actor may read it; others' executions are as unknown as missing ones. */
  async getExecution(executionId: string, actor: Actor): Promise<ExecutionRecord> {
    if (!EXECUTION_ID_PATTERN.test(executionId)) throw new NotFound('No such execution.');
    const record = await this.readAudit(() => this.deps.audit.getExecution(executionId));
    if (!record || !(this.isAuditor(actor) || actorKey(record.actor) === actorKey(actor))) {
      throw new NotFound('No such execution.');
    }
    return record;
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
    return actor.kind === 'token' && this.deps.config.auditorGroups.some((group) => actor.groups.includes(group));
  }

  private async readAudit<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      this.deps.logger.log('error', 'audit.read_failed', { error: describeError(error) });
      throw new AuditUnavailable({ cause: error, message: 'The audit store cannot be read.' });
    }
  }

  private async runWithTimeLimit(
    command: Command,
    args: Record<string, unknown>,
    executionId: string,
    actor: Actor,
    dryRun: boolean,
    timeLimitMs: number,
  ): Promise<{ status: ExecutionStatus; result?: unknown; error?: string; output: string[] }> {
    const output: string[] = [];
    let open = true;
    const controller = new AbortController();
    const ctx: CommandContext = {
      executionId,
      actor,
      signal: controller.signal,
      deadline: this.now() + timeLimitMs,
      log: (...parts) => {
        // Lines logged after the run ended (a command that ignores its abort signal) are dropped.
        if (open && output.length < auditLimits.outputLines) output.push(parts.map(formatPart).join(' '));
      },
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeLimitMs);
    });
    try {
      const work = Promise.resolve().then(() => (dryRun ? command.plan!(args as never, ctx) : command.run(args as never, ctx)));
      const winner = await Promise.race([work.then((value) => ({ value })), timedOut]);
      if (winner === 'timeout') {
        controller.abort();
        // The command may keep going until it notices the signal; its late rejection is not ours to report.
        work.catch(() => undefined);
        return { status: 'timed_out', error: `Command "${command.name}" exceeded its time limit of ${timeLimitMs} ms.`, output };
      }
      return { status: dryRun ? 'planned' : 'succeeded', result: toJsonValue(winner.value), output };
    } catch (error) {
      return { status: 'failed', error: error instanceof Error ? error.message : String(error), output };
    } finally {
      open = false;
      clearTimeout(timer);
    }
  }

  /** True if recorded. The attempt record already proves the run; a lost outcome is reported, not hidden. */
  private async recordOutcome(outcome: OutcomeRecord, logFields: Record<string, unknown>): Promise<boolean> {
    let lastError: unknown;
    for (const delay of pipelineDefaults.outcomeRetryDelaysMs) {
      if (delay) await sleep(delay);
      try {
        await this.deps.audit.recordOutcome(outcome);
        return true;
      } catch (error) {
        lastError = error;
      }
    }
    this.deps.logger.log('error', 'audit.outcome_failed', { ...logFields, error: describeError(lastError) });
    return false;
  }
}

function formatPart(part: unknown): string {
  if (typeof part === 'string') return part;
  try {
    return JSON.stringify(part) ?? String(part);
  } catch {
    return String(part);
  }
}

/** What a command returned, as JSON will carry it (undefined → null, no functions or cycles). */
function toJsonValue(value: unknown): unknown {
  if (value === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(value) ?? 'null');
  } catch {
    throw new Error('The command returned a value that is not JSON (a cycle or a BigInt).');
  }
}
