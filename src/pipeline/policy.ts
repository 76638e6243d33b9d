/**
 * Who may do what, in one place: which names are commands that may run (the
 * allowlist, and loading them), who may run one (groups and scopes), who may
 * read an execution (its actor, auditors), who may decide on one (approvers),
 * and the per-command rules config adds (exclusive, approval, time limits).
 * Answers questions; writes nothing.
 */
import type { Actor, Command, CommandLoader } from '../command.js';
import { commandDefaults } from '../command.js';
import type { ManageConfig } from '../config.js';
import { CommandNotAllowed, Forbidden, InternalError } from '../errors.js';
import { describeError, type Logger } from '../log.js';
import { actorKey, type ExecutionRecord } from '../stores/audit/store.js';

/** What a command name may look like; anything else is refused before any lookup. */
export const COMMAND_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export class Policy {
  private readonly loaded = new Map<string, Promise<Command>>();

  constructor(private readonly deps: { config: ManageConfig; commands: Readonly<Record<string, CommandLoader>>; logger: Logger }) {}

  /** Resolves an allow-listed name to its command; anything else, existing or not, is refused alike. */
  command(name: string): Promise<Command> {
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

  /** The allow-listed names, sorted. */
  allowedNames(): string[] {
    return [...this.deps.config.allowList].sort();
  }

  /** Every command the service defines (allowed or not), sorted: the audit chains to verify. */
  definedNames(): string[] {
    return Object.keys(this.deps.commands).sort();
  }

  authorize(command: Command, actor: Actor): void {
    if (!this.mayRun(command, actor)) {
      throw new Forbidden(`You lack a group or scope that command "${command.name}" requires.`);
    }
  }

  /** Group and scope rules are token claims; a direct invoker is trusted as far as the allowlist allows. */
  mayRun(command: Command, actor: Actor): boolean {
    if (actor.kind === 'invoke') return true;
    const groupRules = [this.deps.config.commandGroups.get(command.name), command.groups].filter(
      (groups): groups is string[] => Array.isArray(groups) && groups.length > 0,
    );
    // Config can only tighten what the command declares: each rule must be met.
    const groupsMet = groupRules.every((groups) => groups.some((group) => actor.groups.includes(group)));
    const scopesMet = (command.scopes ?? []).every((scope) => actor.scopes.includes(scope));
    return groupsMet && scopesMet;
  }

  isAuditor(actor: Actor): boolean {
    return this.deps.config.auditorGroups.some((group) => inGroups(actor, group));
  }

  /** The actor who ran it, and auditors. */
  mayRead(record: ExecutionRecord, actor: Actor): boolean {
    return this.isAuditor(actor) || actorKey(record.actor) === actorKey(actor);
  }

  /** A member of one of these approver groups. */
  isApprover(actor: Actor, approvers: readonly string[]): boolean {
    return approvers.some((group) => inGroups(actor, group));
  }

  /**
   * An approver may read a request that waits for their group (to see what they
   * approve: its arguments are redacted as for every reader), and what they decided.
   * `command` is the loaded command, for approvers the command itself declares.
   */
  mayReview(record: ExecutionRecord, actor: Actor, command?: Command): boolean {
    if (actor.kind !== 'token') return false;
    if (record.decision && this.samePerson(record.decision.by, actor)) return true;
    return record.status === 'awaiting_approval' && this.isApprover(actor, this.approversOf(record.command, command));
  }

  /** Who may learn where a decision on this execution stands: its readers and its command's approvers. */
  maySeeDecision(record: ExecutionRecord, actor: Actor, command?: Command): boolean {
    return this.mayRead(record, actor) || this.isApprover(actor, this.approversOf(record.command, command));
  }

  /**
   * The command if it may still run, undefined if it was taken off the allowlist
   * (or is no command): for decisions on requests made before.
   */
  async commandIfAllowed(name: string): Promise<Command | undefined> {
    try {
      return await this.command(name);
    } catch (error) {
      if (error instanceof CommandNotAllowed) return undefined;
      throw error;
    }
  }

  /**
   * Whether two identities are one person, for the two-person rule. The same
   * issuer and subject, or — across issuers (Cognito and an OIDC issuer may both
   * be trusted, and one person may hold an account at each) — a subject or
   * username of one equal to a subject or username of the other, compared
   * case-insensitively (Unicode NFKC, lower case). It errs towards "the same
   * person": two people whose usernames differ only in case cannot approve each
   * other's requests.
   */
  samePerson(a: Actor, b: Actor): boolean {
    if (actorKey(a) === actorKey(b)) return true;
    if (a.kind !== 'token' || b.kind !== 'token') return false;
    const names = (actor: Extract<Actor, { kind: 'token' }>) =>
      [actor.subject, actor.username].filter((name): name is string => typeof name === 'string' && name.length > 0).map(fold);
    const mine = new Set(names(a));
    return names(b).some((name) => mine.has(name));
  }

  isExclusive(command: Command): boolean {
    return Boolean(command.exclusive || this.deps.config.exclusive.has(command.name));
  }

  /** Approver groups: the config's for this command if it names any, else the command's own. */
  approversOf(name: string, command?: Command): string[] {
    return [...(this.deps.config.approval.get(name) ?? command?.approvers ?? [])];
  }

  /** The command's own limit, within the transport's bound. */
  timeLimit(command: Command, maxTimeMs: number): number {
    return Math.max(1, Math.min(command.timeLimitMs ?? commandDefaults.timeLimitMs, maxTimeMs));
  }
}

function fold(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}

function inGroups(actor: Actor, group: string): boolean {
  return actor.kind === 'token' && actor.groups.includes(group);
}
