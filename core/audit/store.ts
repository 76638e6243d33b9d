/**
 * The audit trail, behind an interface: DynamoDB in production and the local
 * stack, memory in benchmarks. Records are append-only: an attempt before the
 * command runs, an outcome after; neither is ever overwritten.
 */
import type { Actor } from '../command.js';

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

export interface ExecutionSource {
  channel: 'http' | 'invoke';
  ip?: string;
  userAgent?: string;
  requestId?: string;
}

/** Written before the command runs; if it cannot be written, the command does not run. */
export interface AttemptRecord {
  executionId: string;
  command: string;
  /** `running`, or `planned` for a dry run. */
  status: ExecutionStatus;
  dryRun: boolean;
  actor: Actor;
  source: ExecutionSource;
  /** The arguments as validated, sensitive fields replaced by `"[REDACTED]"`. */
  args: Record<string, unknown>;
  startedAt: string;
  /** After this instant a run without an outcome has certainly ended: it reads as `timed_out`. */
  deadline: string;
  timeLimitMs: number;
}

/** Written after the command ran (or was refused by its time limit). */
export interface OutcomeRecord {
  executionId: string;
  status: ExecutionStatus;
  finishedAt: string;
  durationMs: number;
  result?: unknown;
  error?: { code: string; message: string };
  output: string[];
}

/** An execution as read back: its attempt, and its outcome if one was recorded. */
export interface ExecutionRecord extends AttemptRecord {
  finishedAt?: string;
  durationMs?: number;
  result?: unknown;
  error?: { code: string; message: string };
  output?: string[];
  /** False while an outcome is missing although the deadline has passed (the run died). */
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
}

export interface AuditStore {
  /** Conditional put: fails if the execution id exists. Throws on any failure. */
  recordAttempt(record: AttemptRecord): Promise<void>;
  /** Conditional put of the one outcome of an execution. Throws on any failure. */
  recordOutcome(record: OutcomeRecord): Promise<void>;
  getExecution(executionId: string): Promise<ExecutionRecord | undefined>;
  /** Newest first. */
  listExecutions(query: ExecutionQuery): Promise<ExecutionPage>;
}

/** A cursor that does not decode to what this store issued. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

/** The identity the audit indexes by: issuer + subject for a token, the given name for an invocation. */
export function actorKey(actor: Actor): string {
  return actor.kind === 'token' ? `token ${actor.issuer} ${actor.subject}` : `invoke ${actor.name}`;
}

/** Merge an attempt and its outcome into what a reader sees. */
export function mergeExecution(attempt: AttemptRecord, outcome: OutcomeRecord | undefined, now: number): ExecutionRecord {
  if (outcome) {
    const { executionId: _id, ...rest } = outcome;
    return { ...attempt, ...rest, outcomeRecorded: true };
  }
  // A run with no outcome past its deadline died (or its outcome write failed): it cannot still be running.
  const stale = attempt.status === 'running' && Date.parse(attempt.deadline) < now;
  return { ...attempt, status: stale ? 'timed_out' : attempt.status, outcomeRecorded: false };
}
