/**
 * An in-memory audit store with the same semantics as the DynamoDB one
 * (conditional writes, newest first), for benchmarks and unit tests.
 */
import {
  actorKey,
  mergeExecution,
  InvalidCursorError,
  type AttemptRecord,
  type AuditStore,
  type ExecutionPage,
  type ExecutionQuery,
  type ExecutionRecord,
  type OutcomeRecord,
} from './store.js';

export class MemoryAuditStore implements AuditStore {
  readonly attempts = new Map<string, AttemptRecord>();
  readonly outcomes = new Map<string, OutcomeRecord>();

  constructor(private readonly now: () => number = Date.now) {}

  async recordAttempt(record: AttemptRecord): Promise<void> {
    if (this.attempts.has(record.executionId)) throw new Error('ConditionalCheckFailed: attempt exists');
    this.attempts.set(record.executionId, structuredClone(record));
  }

  async recordOutcome(record: OutcomeRecord): Promise<void> {
    if (this.outcomes.has(record.executionId)) throw new Error('ConditionalCheckFailed: outcome exists');
    this.outcomes.set(record.executionId, structuredClone(record));
  }

  async getExecution(executionId: string): Promise<ExecutionRecord | undefined> {
    const attempt = this.attempts.get(executionId);
    return attempt && mergeExecution(attempt, this.outcomes.get(executionId), this.now());
  }

  async listExecutions(query: ExecutionQuery): Promise<ExecutionPage> {
    const matching = [...this.attempts.values()]
      .filter((a) => (!query.actorKey || actorKey(a.actor) === query.actorKey) && (!query.command || a.command === query.command))
      .sort((a, b) => (a.executionId < b.executionId ? 1 : -1));
    let start = 0;
    if (query.cursor !== undefined) {
      start = matching.findIndex((a) => a.executionId === query.cursor) + 1;
      if (start === 0) throw new InvalidCursorError('cursor is not one this service issued for this query');
    }
    const page = matching.slice(start, start + query.limit);
    const more = start + query.limit < matching.length;
    return {
      executions: page.map((a) => mergeExecution(a, this.outcomes.get(a.executionId), this.now())),
      ...(more && page.length ? { cursor: page[page.length - 1]!.executionId } : {}),
    };
  }
}
