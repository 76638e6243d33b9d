/**
 * The DynamoDB audit store. Each record is kept as one JSON string beside the
 * few attributes DynamoDB indexes: what was written is what is read back, byte
 * for byte, and what the chain hash covers.
 *
 * Here: reading one execution and listing them, each rebuilt only from chained,
 * verified records. Elsewhere: the item layout (dynamodb-items.ts), appends
 * (chain-appender.ts: heads and the per-chain queue), verify's walks
 * (dynamodb-walks.ts), the client (../dynamo-client.ts).
 */
import type { DynamoDocumentClient } from '../dynamo-client.js';
import { auditKeys, stateKeys } from './table.js';
import { chainHash, chainOf } from './chain.js';
import { ChainAppender, chainAppendDefaults } from './chain-appender.js';
import { findStrayItems, walkChain } from './dynamodb-walks.js';
import { ALL, chainPartition, chainedRecordsOf, decodeCursor, encodeCursor, positionKey, positionOf, seqKey, toChainedEntry } from './dynamodb-items.js';
import { createDynamoClient, type DynamoClientOptions } from '../dynamo-client.js';
import { asStoreError } from '../limits.js';
import {
  AuditIntegrityError,
  actorKey,
  foldExecution,
  type AuditEntry,
  type AuditStore,
  type ChainedEntry,
  type ExecutionPage,
  type ExecutionQuery,
  type ExecutionRecord,
  type StrayItem,
} from './store.js';

// Their home moved; importers of this module keep finding them here.
export { createDynamoClient, type DynamoClientOptions } from '../dynamo-client.js';
export { positionKey } from './dynamodb-items.js';

export interface DynamoAuditStoreOptions extends DynamoClientOptions {
  tableName: string;
  /** Keys the chain hashes (HMAC); without it they are plain SHA-256. */
  hashKey?: Buffer;
  now?: () => number;
  /**
   * The state table, where the store keeps each execution's chain position
   * (`AUDIT#<executionId>`: its chain and a sequence number at or before its
   * first record), written before that record. Reads of one execution then use
   * it with strongly consistent reads instead of the eventually consistent
   * `byExecution` index. Without it, reads use the index.
   */
  positionTable?: string;
  /** How long a position is kept; afterwards reads use the index (long caught up). Default 35 days. */
  positionTtlMs?: number;
}

/** One execution's records as stored in its chain, read with strongly consistent reads. */
export interface ChainedExecution {
  chain: string;
  entries: (ChainedEntry & { verified: boolean })[];
}

export const dynamoAuditDefaults = {
  ...chainAppendDefaults,
  /** Executions whose records are read at once when listing. */
  listReadConcurrency: 10,
} as const;

export class DynamoAuditStore implements AuditStore {
  private readonly table: string;
  private readonly now: () => number;
  private readonly appender: ChainAppender;

  constructor(
    private readonly options: DynamoAuditStoreOptions,
    private readonly client: DynamoDocumentClient = createDynamoClient(options),
  ) {
    this.table = options.tableName;
    this.now = options.now ?? Date.now;
    this.appender = new ChainAppender({
      client,
      table: this.table,
      hashKey: options.hashKey,
      positionTable: options.positionTable,
      positionTtlMs: options.positionTtlMs,
      now: this.now,
    });
  }

  /** Appends to the record's chain: see {@link ChainAppender.append}. */
  append(entry: AuditEntry): Promise<void> {
    return this.appender.append(entry);
  }

  /**
   * One execution. `consistent`: only strongly consistent reads (its position,
   * then its chain), for reads that decide something; the index is used only for
   * an execution without a position. Otherwise the index first (one request), and
   * the consistent path when the index does not have it yet (right after a 202).
   */
  async getExecution(executionId: string, options: { consistent?: boolean } = {}): Promise<ExecutionRecord | undefined> {
    try {
      return foldExecution(await this.verifiedEntries(executionId, options), this.now());
    } catch (error) {
      if (error instanceof AuditIntegrityError) throw error;
      throw asStoreError(error);
    }
  }

  /**
   * An execution's records as verify sees them: only the verified items of its own
   * chain ({@link chainedRecordsOf}), and a chained item whose hash does not match
   * makes the read refuse. `consistent` as in getExecution.
   */
  private async verifiedEntries(executionId: string, options: { consistent?: boolean }): Promise<AuditEntry[]> {
    if (!options.consistent) {
      const indexed = chainedRecordsOf(executionId, await this.itemsOf(executionId), this.options.hashKey);
      if (indexed.length > 0 || !this.options.positionTable) return indexed;
    }
    const chained = await this.readExecution(executionId);
    if (chained) {
      if (chained.entries.some((entry) => !entry.verified)) throw new AuditIntegrityError(executionId);
      return chainedRecordsOf(executionId, chained.entries.map((entry) => ({ ...entry, pk: chainPartition(chained.chain), sk: seqKey(entry.seq), record: entry.recordJson })), this.options.hashKey);
    }
    return options.consistent ? chainedRecordsOf(executionId, await this.itemsOf(executionId), this.options.hashKey) : [];
  }

  /**
   * One execution's records, read with strongly consistent reads only: its
   * position (GetItem, ConsistentRead) and its chain from there (Query,
   * ConsistentRead), up to its outcome. Only chained items; each says whether its
   * hash matches its content (`verified`). Undefined when the store keeps no
   * position for it (positions off, expired, or an id never written): then only
   * the index can tell.
   */
  async readExecution(executionId: string): Promise<ChainedExecution | undefined> {
    const table = this.options.positionTable;
    if (!table) return undefined;
    const { Item } = await this.client.get({ TableName: table, Key: { [stateKeys.partition]: positionKey(executionId) }, ConsistentRead: true });
    if (!Item) return undefined;
    const { chain, fromSeq } = positionOf(Item);
    const entries: ChainedExecution['entries'] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const response = await this.client.query({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk >= :from',
        FilterExpression: 'executionId = :id',
        ExpressionAttributeValues: { ':pk': chainPartition(chain), ':from': seqKey(fromSeq), ':id': executionId },
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      });
      for (const item of response.Items ?? []) {
        const entry = toChainedEntry(item);
        const verified = chainHash({ chain, seq: entry.seq, kind: entry.kind, executionId, recordJson: entry.recordJson, prevHash: entry.prevHash }, this.options.hashKey) === entry.hash;
        entries.push({ ...entry, verified });
      }
      // Its outcome is its last record: nothing of it comes later.
      if (entries.some((entry) => entry.kind === 'outcome')) break;
      startKey = response.LastEvaluatedKey;
    } while (startKey);
    return { chain, entries };
  }

  async listExecutions(query: ExecutionQuery): Promise<ExecutionPage> {
    try {
      return await this.listExecutionsNow(query);
    } catch (error) {
      throw asStoreError(error);
    }
  }

  private async listExecutionsNow(query: ExecutionQuery): Promise<ExecutionPage> {
    const { byActor, byCommand, all } = auditKeys;
    const [index, partition, value] = query.actorKey
      ? [byActor.index, byActor.partition, query.actorKey]
      : query.command
        ? [byCommand.index, byCommand.partition, query.command]
        : [all.index, all.partition, ALL];
    // An actor's list filtered by command cannot use a key condition for both; filter, and page on.
    const filterCommand = query.actorKey && query.command ? query.command : undefined;

    let startKey: Record<string, unknown> | undefined = decodeCursor(query.cursor, partition, value);
    const executionIds: { executionId: string; pk: string; kind: string }[] = [];
    for (let page = 0; page < 10 && executionIds.length < query.limit; page++) {
      const response = await this.client.query({
        TableName: this.table,
        IndexName: index,
        KeyConditionExpression: '#p = :p',
        ExpressionAttributeNames: { '#p': partition, '#k': 'kind', ...(filterCommand ? { '#c': byCommand.partition } : {}) },
        ExpressionAttributeValues: { ':p': value, ...(filterCommand ? { ':c': filterCommand } : {}) },
        ...(filterCommand ? { FilterExpression: '#c = :c' } : {}),
        ProjectionExpression: 'executionId, pk, sk, listSk, #p, #k',
        ScanIndexForward: false,
        Limit: query.limit - executionIds.length,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      });
      executionIds.push(...(response.Items ?? []).map((item) => ({ executionId: String(item.executionId), pk: String(item.pk), kind: String(item.kind) })));
      startKey = response.LastEvaluatedKey;
      if (!startKey) break;
    }

    // Each listed execution is rebuilt from its chained, verified records; the index attributes that
    // listed it (not covered by the hash) must say what the verified record says, or it is withheld.
    const now = this.now();
    const withheld: NonNullable<ExecutionPage['withheld']> = [];
    const executions = await mapLimited(executionIds, dynamoAuditDefaults.listReadConcurrency, async ({ executionId, pk, kind }) => {
      const withhold = (reason: string) => void withheld.push({ executionId, reason });
      let record: ExecutionRecord | undefined;
      try {
        record = foldExecution(await this.verifiedEntries(executionId, {}), now);
      } catch (error) {
        if (!(error instanceof AuditIntegrityError)) throw error;
        return withhold('its records do not verify');
      }
      if (!record) return withhold('no chained record of it exists');
      if (kind !== 'attempt' || pk !== chainPartition(chainOf(record.command, executionId))) return withhold('listed by an item outside its chain');
      if (query.actorKey !== undefined && actorKey(record.actor) !== query.actorKey) return withhold('its record names another actor');
      if (query.command !== undefined && record.command !== query.command) return withhold('its record names another command');
      return record;
    });
    return {
      executions: executions.filter((e): e is ExecutionRecord => e !== undefined),
      ...(startKey ? { cursor: encodeCursor(startKey) } : {}),
      ...(withheld.length ? { withheld } : {}),
    };
  }

  /** Verify's walk of one chain: see {@link walkChain}. */
  readChain(chain: string, options: { since?: string } = {}): AsyncIterable<ChainedEntry> {
    return walkChain(this.client, this.table, chain, options);
  }

  /** Verify's look beyond the chains: see {@link findStrayItems}. */
  findStrays(commands: readonly string[], options: { everything?: boolean } = {}): Promise<StrayItem[]> {
    return findStrayItems(this.client, this.table, commands, options);
  }

  /** Every item the `byExecution` index holds for the id: chained or not, to be checked by the caller. */
  private async itemsOf(executionId: string): Promise<Record<string, unknown>[]> {
    const { Items = [] } = await this.client.query({
      TableName: this.table,
      IndexName: auditKeys.byExecution.index,
      KeyConditionExpression: 'executionId = :id',
      ExpressionAttributeValues: { ':id': executionId },
    });
    return Items;
  }
}

async function mapLimited<T, R>(items: T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
