/**
 * The audit trail, behind an interface: DynamoDB in production and the local
 * stack, memory in benchmarks. Records are append-only and chained: each
 * command has its own hash chain (so concurrent runs of different commands
 * never wait on one another), each record carrying its sequence number, the
 * previous record's hash and its own.
 */
import { createHash } from 'node:crypto';
import type { Actor } from '../../command.js';

export type ExecutionStatus =
  | 'accepted'
  | 'awaiting_approval'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'rejected'
  | 'expired'
  | 'planned';

export const TERMINAL_STATUSES: ReadonlySet<ExecutionStatus> = new Set([
  'succeeded',
  'failed',
  'timed_out',
  'rejected',
  'expired',
  'planned',
]);

export interface ExecutionSource {
  channel: 'http' | 'invoke';
  ip?: string;
  userAgent?: string;
  requestId?: string;
}

/** The first record of an execution: written before anything runs; if it cannot be written, nothing runs. */
export interface AttemptRecord {
  executionId: string;
  command: string;
  /** `running`, `planned` (dry run), `awaiting_approval` or `accepted` (runs in a worker). */
  status: ExecutionStatus;
  dryRun: boolean;
  actor: Actor;
  source: ExecutionSource;
  /** The arguments as validated, sensitive fields replaced by `"[REDACTED]"`. */
  args: Record<string, unknown>;
  /** HMAC-SHA256 of each sensitive argument's value, when an audit key is configured. */
  argsHmac?: Record<string, string>;
  /** Binds an approval to exactly these arguments. */
  planDigest?: string;
  startedAt: string;
  /** After this instant an execution without an outcome has certainly ended: it reads as `timed_out` (or `expired`). */
  deadline: string;
  timeLimitMs: number;
  idempotencyKey?: string;
  /** What the store cut to keep the record under DynamoDB's item limit (see `fitRecord`). */
  truncated?: Record<string, { lines?: number; bytes: number }>;
}

/** An approver's decision on an execution that awaited approval. */
export interface DecisionRecord {
  executionId: string;
  command: string;
  decision: 'approved' | 'rejected';
  by: Actor;
  at: string;
}

/** Written right before a deferred run (after approval, or in an async worker) starts. */
export interface StartRecord {
  executionId: string;
  command: string;
  startedAt: string;
  deadline: string;
  timeLimitMs: number;
}

/** Written after the command ran (or was stopped by its time limit). */
export interface OutcomeRecord {
  executionId: string;
  command: string;
  status: ExecutionStatus;
  finishedAt: string;
  durationMs: number;
  result?: unknown;
  error?: { code: string; message: string };
  output: string[];
  /** What the store cut to keep the record under DynamoDB's item limit, e.g. `{ output: { lines, bytes } }`. */
  truncated?: Record<string, { lines?: number; bytes: number }>;
}

export type AuditEntry =
  | { kind: 'attempt'; record: AttemptRecord }
  | { kind: 'decision'; record: DecisionRecord }
  | { kind: 'start'; record: StartRecord }
  | { kind: 'outcome'; record: OutcomeRecord };

export type AuditKind = AuditEntry['kind'];

/** An entry as stored in its command's chain, unparsed: what the hash covers. */
export interface ChainedEntry {
  kind: AuditKind;
  executionId: string;
  seq: number;
  prevHash: string;
  hash: string;
  recordJson: string;
  /**
   * The item's list-index attributes (DynamoDB: `listSk`, `actorKey`, `command`,
   * `listAll`), which the hash does not cover: verification checks them against
   * the record (attempts carry exactly what the record implies, other items none).
   * Absent for stores without such attributes.
   */
  listed?: Partial<Record<'listSk' | 'actorKey' | 'command' | 'listAll', string>>;
}

/** An execution as read back: its records folded into one view. */
export interface ExecutionRecord extends AttemptRecord {
  requestedAt: string;
  decision?: { decision: 'approved' | 'rejected'; by: Actor; at: string };
  finishedAt?: string;
  durationMs?: number;
  result?: unknown;
  error?: { code: string; message: string };
  output?: string[];
  /** False when a run that started has no outcome record (it died, or the outcome write failed). */
  outcomeRecorded: boolean;
}

export interface ExecutionQuery {
  /** Only this actor's executions; all when absent (auditors). */
  actorKey?: string;
  command?: string;
  limit: number;
  /** Opaque, from a previous page. */
  cursor?: string;
}

export interface ExecutionPage {
  executions: ExecutionRecord[];
  cursor?: string;
  /** Listed by an index but not shown: no chained, verified records, or records that say otherwise than the index. */
  withheld?: { executionId: string; reason: string }[];
}

/** An item in the audit table that no chain accounts for (verify reports it). */
export interface StrayItem {
  pk: string;
  sk: string;
  executionId?: string;
  kind?: string;
  /** The index it was found through. */
  index: string;
}

export interface AuditStore {
  /** Appends to the command's chain. Never overwrites; throws on any failure. */
  append(entry: AuditEntry): Promise<void>;
  /**
   * One execution's records folded. `consistent: true` for reads that decide
   * something (approvals, idempotency recovery, task-token rebinding): strongly
   * consistent reads only, where the store can (DynamoDB: by the execution's
   * chain position). Without it a store may answer from an index that lags.
   */
  getExecution(executionId: string, options?: { consistent?: boolean }): Promise<ExecutionRecord | undefined>;
  /**
   * The execution's own items in its chain, read consistently, each with
   * `verified` (its hash matches its content); undefined when the store cannot
   * tell without an index. Only chained items: what verify checks.
   */
  readExecution?(executionId: string): Promise<{ chain: string; entries: (ChainedEntry & { verified: boolean })[] } | undefined>;
  /** Newest first. */
  listExecutions(query: ExecutionQuery): Promise<ExecutionPage>;
  /**
   * One chain (`<command>#<shard>`) in sequence order. `since` is a hint for
   * stores that page (the first record at or after it); verification must not use
   * it to pick where to start (a record's time is what an edit can change).
   */
  readChain(chain: string, options?: { since?: string }): AsyncIterable<ChainedEntry>;
  /**
   * Items that the list indexes show but no walked chain holds as an execution's
   * attempt (a forged or misplaced item), for the chains of `commands` (`everything`:
   * `commands` are all the service's, so every listed item must be theirs). Only what
   * the store can enumerate without a scan (DynamoDB: the `all` and `byCommand` indexes).
   */
  findStrays?(commands: readonly string[], options?: { everything?: boolean }): Promise<StrayItem[]>;
}

/** An execution's chained records do not match their hashes: a read refuses to show them. */
export class AuditIntegrityError extends Error {
  override readonly name = 'AuditIntegrityError';
  constructor(readonly executionId: string) {
    super(`the audit records of execution ${executionId} do not verify`);
  }
}

/** A cursor that does not decode to what this store issued. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

/**
 * Longest actor key kept as is. It is an index partition key (`byActor`, at most
 * 2,048 bytes in DynamoDB); a longer one (a long `sub` or issuer) is replaced by
 * its SHA-256, so that no caller can make the audit unwritable with its identity.
 */
export const MAX_PLAIN_ACTOR_KEY_BYTES = 512;

/** The identity the audit indexes by: issuer + subject for a token, the given name for an invocation. */
export function actorKey(actor: Actor): string {
  const key = actor.kind === 'token' ? `token ${actor.issuer} ${actor.subject}` : `invoke ${actor.name}`;
  if (Buffer.byteLength(key) <= MAX_PLAIN_ACTOR_KEY_BYTES) return key;
  // `sha256:` cannot start a plain key's second word without being that key's issuer: no plain key collides.
  return `${actor.kind} sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * Folds an execution's records into what a reader sees. An execution whose
 * deadline passed with no outcome died (or lost its outcome write): it reads as
 * `timed_out`, or `expired` if it was never approved.
 */
export function foldExecution(entries: AuditEntry[], now: number): ExecutionRecord | undefined {
  const attempt = entries.find((e): e is Extract<AuditEntry, { kind: 'attempt' }> => e.kind === 'attempt')?.record;
  if (!attempt) return undefined;
  const decision = entries.find((e): e is Extract<AuditEntry, { kind: 'decision' }> => e.kind === 'decision')?.record;
  const start = entries.find((e): e is Extract<AuditEntry, { kind: 'start' }> => e.kind === 'start')?.record;
  const outcome = entries.find((e): e is Extract<AuditEntry, { kind: 'outcome' }> => e.kind === 'outcome')?.record;

  const view: ExecutionRecord = { ...attempt, requestedAt: attempt.startedAt, outcomeRecorded: Boolean(outcome) };
  if (decision) view.decision = { decision: decision.decision, by: decision.by, at: decision.at };
  if (start) Object.assign(view, { startedAt: start.startedAt, deadline: start.deadline, timeLimitMs: start.timeLimitMs, status: 'running' });
  if (decision?.decision === 'rejected') view.status = 'rejected';
  if (outcome) {
    const { executionId: _e, command: _c, truncated, ...rest } = outcome;
    Object.assign(view, rest);
    if (truncated) view.truncated = { ...view.truncated, ...truncated };
    return view;
  }
  if (Date.parse(view.deadline) < now) {
    if (view.status === 'awaiting_approval') view.status = 'expired';
    else if (view.status === 'running' || view.status === 'accepted') view.status = 'timed_out';
  }
  // A rejected or expired request never ran: it has no outcome to lose.
  if (view.status === 'rejected' || view.status === 'expired') view.outcomeRecorded = true;
  return view;
}
