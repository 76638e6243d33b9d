/**
 * Appending to the audit chains in DynamoDB: each record takes the next sequence
 * number of its chain with a conditional put, linked to the head's hash.
 *
 * This instance keeps the last head it saw per chain, so most appends need no
 * read, and queues its own appends per chain, so that concurrent requests of one
 * instance (serverless-offline serves them so) do not race for one number.
 * Other instances can still take a number first: then the append reads the new
 * head and tries the next, with back-off, within a budget.
 */
import type { DynamoDocumentClient } from '../dynamo-client.js';
import { GENESIS_HASH, chainHash, chainOf } from './chain.js';
import { chainItem, chainPartition, positionItem, seqKey } from './dynamodb-items.js';
import { fitRecord } from '../../redact.js';
import { asStoreError } from '../limits.js';
import type { AuditEntry } from './store.js';

export const chainAppendDefaults = {
  /** Tries to claim the next sequence number of a chain when others append at the same time. */
  appendTries: 30,
  /** How long an append may keep trying under contention before the write counts as failed. */
  appendBudgetMs: 5000,
  /**
   * How long an append waits for this instance's previous append to the same chain;
   * past it, it goes ahead (and may have to race for the number): one stuck write
   * must not hold up every later run of its command.
   */
  queueWaitMs: 1000,
  positionTtlMs: 35 * 86_400_000,
} as const;

export interface ChainAppenderOptions {
  client: DynamoDocumentClient;
  /** The audit table. */
  table: string;
  /** Keys the chain hashes (HMAC); without it they are plain SHA-256. */
  hashKey?: Buffer | undefined;
  /** The state table, where an attempt's position is written before the attempt; without it, none is. */
  positionTable?: string | undefined;
  /** How long a position is kept; default {@link chainAppendDefaults}.positionTtlMs. */
  positionTtlMs?: number | undefined;
  /** The clock of the positions' expiry. */
  now: () => number;
}

export class ChainAppender {
  /** The last head this instance saw per chain: most appends then need no read. */
  private readonly heads = new Map<string, { seq: number; hash: string }>();
  /** The append in progress per chain: this instance's own appends wait their turn instead of racing for a number. */
  private readonly appending = new Map<string, Promise<void>>();

  constructor(private readonly options: ChainAppenderOptions) {}

  /**
   * Appends to the record's chain. Appends from this instance to one chain go one
   * at a time (each then knows the head, instead of several racing for one number
   * under concurrent requests, as serverless-offline serves them); other
   * instances' appends can still take a number first, and then this one reads the
   * new head and tries the next.
   */
  append(entry: AuditEntry): Promise<void> {
    const chain = chainOf(entry.record.command, entry.record.executionId);
    const previous = this.appending.get(chain);
    const appended = previous ? waitAtMost(previous, chainAppendDefaults.queueWaitMs).then(() => this.appendNow(entry)) : this.appendNow(entry);
    const done = appended.catch(() => undefined);
    this.appending.set(chain, done);
    void done.then(() => {
      if (this.appending.get(chain) === done) this.appending.delete(chain);
    });
    return appended;
  }

  private async appendNow(entry: AuditEntry): Promise<void> {
    try {
      await this.appendFitted(entry);
    } catch (error) {
      throw asStoreError(error);
    }
  }

  private async appendFitted(entry: AuditEntry): Promise<void> {
    const { client, table, hashKey } = this.options;
    const { command, executionId } = entry.record;
    const chain = chainOf(command, executionId);
    // Capped by its stored bytes, with what was cut said in the record itself.
    const recordJson = JSON.stringify(fitRecord(entry.record));
    let head = this.heads.get(chain);
    let positioned = entry.kind !== 'attempt' || !this.options.positionTable;
    const giveUpAt = Date.now() + chainAppendDefaults.appendBudgetMs;
    for (let attempt = 0; attempt < chainAppendDefaults.appendTries && Date.now() < giveUpAt; attempt++) {
      head ??= await this.readHead(chain);
      const seq = head.seq + 1;
      if (!positioned) {
        // Before the record: no chained attempt without its position (a later number only moves it forward).
        await this.writePosition(executionId, chain, seq);
        positioned = true;
      }
      const hash = chainHash({ chain, seq, kind: entry.kind, executionId, recordJson, prevHash: head.hash }, hashKey);
      try {
        await client.put({
          TableName: table,
          Item: chainItem({ chain, seq, kind: entry.kind, executionId, recordJson, prevHash: head.hash, hash }, entry),
          ConditionExpression: 'attribute_not_exists(pk)',
        });
        this.heads.set(chain, { seq, hash });
        return;
      } catch (error) {
        if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
        // The client retries a put whose answer was lost: the item there may be our own.
        const { Item } = await client.get({ TableName: table, Key: { pk: chainPartition(chain), sk: seqKey(seq) }, ConsistentRead: true });
        if (Item?.hash === hash && Item.record === recordJson) {
          this.heads.set(chain, { seq, hash });
          return;
        }
        // Someone appended first: read the new head and try the next number.
        head = undefined;
        this.heads.delete(chain);
        // Exponential back-off with full jitter: other instances spread out instead of colliding again.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(500, 10 * 2 ** attempt)));
      }
    }
    throw new Error(`could not append to the audit chain "${chain}": too much contention`);
  }

  private async readHead(chain: string): Promise<{ seq: number; hash: string }> {
    const { Items = [] } = await this.options.client.query({
      TableName: this.options.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': chainPartition(chain) },
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
    });
    const last = Items[0];
    return last ? { seq: Number(last.seq), hash: String(last.hash) } : { seq: 0, hash: GENESIS_HASH };
  }

  private async writePosition(executionId: string, chain: string, fromSeq: number): Promise<void> {
    const expiresAt = this.options.now() + (this.options.positionTtlMs ?? chainAppendDefaults.positionTtlMs);
    await this.options.client.put({ TableName: this.options.positionTable!, Item: positionItem(executionId, chain, fromSeq, expiresAt) });
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first. */
function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise.then(() => undefined), timeout]).finally(() => clearTimeout(timer));
}
