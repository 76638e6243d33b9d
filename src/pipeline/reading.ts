/**
 * Reading the record: the commands a caller may run, executions (one, or a
 * page of them), and the audit chains' verification. Each read shows only
 * what the policy lets this actor see; nothing here writes.
 */
import type { Actor } from '../command.js';
import { commandDefaults } from '../command.js';
import type { ManageConfig } from '../config.js';
import { AuditUnavailable, Forbidden, InvalidRequest, NotFound } from '../errors.js';
import { EXECUTION_ID_PATTERN } from '../ids.js';
import { chainsOf, verifyChain, type ChainProblem } from '../stores/audit/chain.js';
import { InvalidCursorError, actorKey, type AuditStore, type ExecutionRecord, type StrayItem } from '../stores/audit/store.js';
import { COMMAND_NAME, type Policy } from './policy.js';
import type { Recorder } from './recorder.js';
import type { CommandSummary } from './types.js';

export const readingDefaults = {
  listLimit: 20,
  maxListLimit: 100,
} as const;

export class Reading {
  constructor(private readonly deps: { config: ManageConfig; audit: AuditStore; policy: Policy; recorder: Recorder }) {}

  /** The commands this actor may run, with the JSON Schema of their `data`. */
  async listCommands(actor: Actor): Promise<CommandSummary[]> {
    const { policy } = this.deps;
    const summaries: CommandSummary[] = [];
    for (const name of policy.allowedNames()) {
      const command = await policy.command(name);
      if (!policy.mayRun(command, actor)) continue;
      const approvers = policy.approversOf(name, command);
      summaries.push({
        name,
        description: command.description,
        schema: command.args,
        timeLimitMs: command.timeLimitMs ?? commandDefaults.timeLimitMs,
        exclusive: policy.isExclusive(command),
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
    const record = await this.deps.recorder.getExecution(executionId);
    const { policy } = this.deps;
    // Its readers, and the approvers a request waits for (what they approve must not be blind).
    const visible = record && (policy.mayRead(record, actor) || policy.mayReview(record, actor, await policy.commandIfAllowed(record.command)));
    if (!record || !visible) throw new NotFound('No such execution.');
    return record;
  }

  /** Executions newest first: all of them for auditors, one's own for everyone else. */
  async listExecutions(actor: Actor, query: { command?: string; limit?: string; cursor?: string }) {
    const limit = query.limit === undefined ? readingDefaults.listLimit : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > readingDefaults.maxListLimit || !/^\d+$/.test(query.limit ?? '1')) {
      throw new InvalidRequest(`limit must be a whole number from 1 to ${readingDefaults.maxListLimit}.`);
    }
    if (query.command !== undefined && !COMMAND_NAME.test(query.command)) {
      throw new InvalidRequest('command is not a command name.');
    }
    try {
      return await this.deps.recorder.readAudit(() =>
        this.deps.audit.listExecutions({
          ...(this.deps.policy.isAuditor(actor) ? {} : { actorKey: actorKey(actor) }),
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

  /** Checks every command's audit chain (auditors only). */
  async verifyAudit(actor: Actor, query: { command?: string; since?: string }) {
    const { policy, recorder, config } = this.deps;
    if (!policy.isAuditor(actor)) throw new Forbidden('Only auditors may verify the audit trail.');
    if (query.command !== undefined && !COMMAND_NAME.test(query.command)) throw new InvalidRequest('command is not a command name.');
    if (query.since !== undefined && Number.isNaN(Date.parse(query.since))) throw new InvalidRequest('since must be an ISO-8601 date.');
    const commands = query.command ? [query.command] : policy.definedNames();
    const chains = [];
    for (const chain of commands.flatMap(chainsOf)) {
      const report = await recorder.readAudit(() =>
        // Always from the chain's start: `since` only narrows the report (a record's time is what an edit can change).
        verifyChain(chain, this.deps.audit.readChain(chain), {
          ...(config.auditHmacKey ? { key: config.auditHmacKey } : {}),
          fromStart: true,
          ...(query.since ? { since: query.since } : {}),
        }),
      );
      if (report.records > 0 || report.problems.length > 0) chains.push(report);
    }
    const problems: ChainProblem[] = chains.flatMap((chain) => chain.problems);
    // Items outside the chains walked (as far as the store can enumerate them: the list indexes).
    const strays = (await recorder.readAudit(async () => (await this.deps.audit.findStrays?.(commands, { everything: !query.command })) ?? [])) as StrayItem[];
    for (const stray of strays) {
      problems.push({
        command: stray.pk.startsWith('CHAIN#') ? stray.pk.slice('CHAIN#'.length).replace(/#\d+$/, '') : '',
        chain: stray.pk,
        seq: Number(stray.sk) || 0,
        ...(stray.executionId ? { executionId: stray.executionId } : {}),
        problem: 'outside_chain',
        detail: `an item (${stray.kind ?? 'no kind'}, ${stray.pk} / ${stray.sk}) is listed by the ${stray.index} index but is no attempt of a chain verified here`,
      });
    }
    return { ok: problems.length === 0, keyed: Boolean(config.auditHmacKey), chains, problems };
  }
}
