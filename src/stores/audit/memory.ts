/**
 * An in-memory audit store with the DynamoDB store's semantics (per-command
 * hash chains, newest first), for benchmarks and unit tests.
 */
import { GENESIS_HASH, chainHash, chainOf } from './chain.js';
import { fitRecord } from '../../redact.js';
import {
  InvalidCursorError,
  actorKey,
  foldExecution,
  type AttemptRecord,
  type AuditEntry,
  type AuditStore,
  type ChainedEntry,
  type ExecutionPage,
  type ExecutionQuery,
  type ExecutionRecord,
} from './store.js';

export class MemoryAuditStore implements AuditStore {
  readonly chains = new Map<string, ChainedEntry[]>();
  private readonly byExecution = new Map<string, AuditEntry[]>();
  private readonly attempts: AttemptRecord[] = [];

  constructor(private readonly options: { hashKey?: Buffer; now?: () => number } = {}) {}

  async append(entry: AuditEntry): Promise<void> {
    const { command, executionId } = entry.record;
    const chainId = chainOf(command, executionId);
    const chain = this.chains.get(chainId) ?? [];
    const prevHash = chain.at(-1)?.hash ?? GENESIS_HASH;
    const seq = chain.length + 1;
    const recordJson = JSON.stringify(fitRecord(entry.record));
    const hash = chainHash({ chain: chainId, seq, kind: entry.kind, executionId, recordJson, prevHash }, this.options.hashKey);
    chain.push({ kind: entry.kind, executionId, seq, prevHash, hash, recordJson });
    this.chains.set(chainId, chain);
    const stored = { kind: entry.kind, record: JSON.parse(recordJson) } as AuditEntry;
    this.byExecution.set(executionId, [...(this.byExecution.get(executionId) ?? []), stored]);
    if (entry.kind === 'attempt') this.attempts.push(stored.record as AttemptRecord);
  }

  /** Like the DynamoDB store's: the execution's chained items, each checked against its hash. */
  async readExecution(executionId: string): Promise<{ chain: string; entries: (ChainedEntry & { verified: boolean })[] } | undefined> {
    const attempt = this.attempts.find((a) => a.executionId === executionId);
    if (!attempt) return undefined;
    const chainId = chainOf(attempt.command, executionId);
    const entries = (this.chains.get(chainId) ?? [])
      .filter((entry) => entry.executionId === executionId)
      .map((entry) => ({
        ...entry,
        verified: chainHash({ chain: chainId, seq: entry.seq, kind: entry.kind, executionId, recordJson: entry.recordJson, prevHash: entry.prevHash }, this.options.hashKey) === entry.hash,
      }));
    return { chain: chainId, entries };
  }

  async getExecution(executionId: string, _options?: { consistent?: boolean }): Promise<ExecutionRecord | undefined> {
    return foldExecution(this.byExecution.get(executionId) ?? [], this.now());
  }

  async listExecutions(query: ExecutionQuery): Promise<ExecutionPage> {
    const matching = this.attempts
      .filter((a) => (!query.actorKey || actorKey(a.actor) === query.actorKey) && (!query.command || a.command === query.command))
      .sort((a, b) => (a.executionId < b.executionId ? 1 : -1));
    let start = 0;
    if (query.cursor !== undefined) {
      start = matching.findIndex((a) => a.executionId === query.cursor) + 1;
      if (start === 0) throw new InvalidCursorError('cursor is not one this service issued for this query');
    }
    const page = matching.slice(start, start + query.limit);
    const more = start + query.limit < matching.length;
    const executions = await Promise.all(page.map((a) => this.getExecution(a.executionId)));
    return {
      executions: executions.filter((e): e is ExecutionRecord => e !== undefined),
      ...(more && page.length ? { cursor: page[page.length - 1]!.executionId } : {}),
    };
  }

  async *readChain(chain: string, options: { since?: string } = {}): AsyncIterable<ChainedEntry> {
    const since = options.since ? Date.parse(options.since) : undefined;
    let started = since === undefined;
    for (const entry of this.chains.get(chain) ?? []) {
      const record = JSON.parse(entry.recordJson);
      if (!started && Date.parse(record.startedAt ?? record.finishedAt ?? record.at) >= since!) started = true;
      if (started) yield entry;
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
