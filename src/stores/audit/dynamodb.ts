/**
 * The DynamoDB audit store. Each record is kept as one JSON string (`record`)
 * beside the few attributes DynamoDB indexes: what was written is what is read
 * back, byte for byte, and what the chain hash covers.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { auditKeys, stateKeys } from './table.js';
import { GENESIS_HASH, chainHash, chainOf, chainsOf } from './chain.js';
import { fitRecord } from '../../redact.js';
import { asStoreError } from '../limits.js';
import {
  AuditIntegrityError,
  InvalidCursorError,
  actorKey,
  foldExecution,
  type AuditEntry,
  type AuditKind,
  type AuditStore,
  type ChainedEntry,
  type ExecutionPage,
  type ExecutionQuery,
  type ExecutionRecord,
  type StrayItem,
} from './store.js';

export interface DynamoClientOptions {
  region: string;
  /** e.g. dynalite or DynamoDB Local */
  endpoint?: string;
  /** Default 2: fail closed fast rather than hold a request through the SDK's default retries. */
  maxAttempts?: number;
  /** Milliseconds; default 2000. */
  requestTimeoutMs?: number;
}

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
  /** Tries to claim the next sequence number of a chain when others append at the same time. */
  appendTries: 30,
  /** How long an append may keep trying under contention before the write counts as failed. */
  appendBudgetMs: 5000,
  /** Executions whose records are read at once when listing. */
  listReadConcurrency: 10,
  /**
   * How long an append waits for this instance's previous append to the same chain;
   * past it, it goes ahead (and may have to race for the number): one stuck write
   * must not hold up every later run of its command.
   */
  queueWaitMs: 1000,
  positionTtlMs: 35 * 86_400_000,
} as const;

export const positionKey = (executionId: string) => `AUDIT#${executionId}`;

const ALL = 'ALL';
const chainPartition = (chain: string) => `CHAIN#${chain}`;
const seqKey = (seq: number) => String(seq).padStart(12, '0');

export function createDynamoClient(options: DynamoClientOptions): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    maxAttempts: options.maxAttempts ?? 2,
    // Without throwOnRequestTimeout the SDK only logs a warning when requestTimeout passes, and waits on.
    requestHandler: { connectionTimeout: 1000, requestTimeout: options.requestTimeoutMs ?? 2000, throwOnRequestTimeout: true },
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

export class DynamoAuditStore implements AuditStore {
  private readonly table: string;
  private readonly now: () => number;
  /** The last head this instance saw per chain: most appends then need no read. */
  private readonly heads = new Map<string, { seq: number; hash: string }>();
  /** The append in progress per chain: this instance's own appends wait their turn instead of racing for a number. */
  private readonly appending = new Map<string, Promise<void>>();

  constructor(
    private readonly options: DynamoAuditStoreOptions,
    private readonly client: DynamoDBDocumentClient = createDynamoClient(options),
  ) {
    this.table = options.tableName;
    this.now = options.now ?? Date.now;
  }

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
    const appended = previous ? waitAtMost(previous, dynamoAuditDefaults.queueWaitMs).then(() => this.appendNow(entry)) : this.appendNow(entry);
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
    const { command, executionId } = entry.record;
    const chain = chainOf(command, executionId);
    // Capped by its stored bytes, with what was cut said in the record itself.
    const recordJson = JSON.stringify(fitRecord(entry.record));
    let head = this.heads.get(chain);
    let positioned = entry.kind !== 'attempt' || !this.options.positionTable;
    const giveUpAt = Date.now() + dynamoAuditDefaults.appendBudgetMs;
    for (let attempt = 0; attempt < dynamoAuditDefaults.appendTries && Date.now() < giveUpAt; attempt++) {
      head ??= await this.readHead(chain);
      const seq = head.seq + 1;
      if (!positioned) {
        // Before the record: no chained attempt without its position (a later number only moves it forward).
        await this.writePosition(executionId, chain, seq);
        positioned = true;
      }
      const hash = chainHash({ chain, seq, kind: entry.kind, executionId, recordJson, prevHash: head.hash }, this.options.hashKey);
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.table,
            Item: {
              pk: chainPartition(chain),
              sk: seqKey(seq),
              seq,
              kind: entry.kind,
              executionId,
              record: recordJson,
              prevHash: head.hash,
              hash,
              ...(entry.kind === 'attempt' ? this.listAttributes(entry.record) : {}),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        this.heads.set(chain, { seq, hash });
        return;
      } catch (error) {
        if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
        // The SDK retries a put whose answer was lost: the item there may be our own.
        const { Item } = await this.client.send(
          new GetCommand({ TableName: this.table, Key: { pk: chainPartition(chain), sk: seqKey(seq) }, ConsistentRead: true }),
        );
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
   * An execution's records as verify sees them: only items of its own chain
   * (`CHAIN#<command>#<shard>` of its attempt's command), each checked against its
   * hash. Items elsewhere that carry its id (a forged outcome in another partition)
   * are not its records and are ignored; a chained item whose hash does not match
   * makes the read refuse ({@link AuditIntegrityError}). `consistent` as in getExecution.
   */
  private async verifiedEntries(executionId: string, options: { consistent?: boolean }): Promise<AuditEntry[]> {
    if (!options.consistent) {
      const indexed = this.chainedOnly(executionId, await this.itemsOf(executionId));
      if (indexed.length > 0 || !this.options.positionTable) return indexed;
    }
    const chained = await this.readExecution(executionId);
    if (chained) {
      if (chained.entries.some((entry) => !entry.verified)) throw new AuditIntegrityError(executionId);
      return this.chainedOnly(executionId, chained.entries.map((entry) => ({ ...entry, pk: chainPartition(chained.chain), sk: seqKey(entry.seq), record: entry.recordJson })));
    }
    return options.consistent ? this.chainedOnly(executionId, await this.itemsOf(executionId)) : [];
  }

  /** The items that are records of the execution's chain, verified; see {@link verifiedEntries}. */
  private chainedOnly(executionId: string, items: Record<string, unknown>[]): AuditEntry[] {
    const entries: AuditEntry[] = [];
    for (const item of items) {
      const pk = String(item.pk ?? '');
      if (!pk.startsWith('CHAIN#') || String(item.executionId) !== executionId) continue;
      const chain = pk.slice('CHAIN#'.length);
      const entry = toChainedEntry(item);
      const verified = chainHash({ chain, seq: entry.seq, kind: entry.kind, executionId, recordJson: entry.recordJson, prevHash: entry.prevHash }, this.options.hashKey) === entry.hash;
      if (!verified) throw new AuditIntegrityError(executionId);
      let record: { executionId?: string; command?: string };
      try {
        record = JSON.parse(entry.recordJson);
      } catch {
        throw new AuditIntegrityError(executionId);
      }
      // Verified, but not where its own chain is (possible only without an audit key): not its record.
      if (record.executionId !== executionId || typeof record.command !== 'string' || chainOf(record.command, executionId) !== chain) continue;
      entries.push({ kind: entry.kind, record } as AuditEntry);
    }
    // One chain per execution: the attempt's. Records claiming another command's chain are not this execution's.
    const command = entries.find((entry) => entry.kind === 'attempt')?.record.command;
    return entries
      .filter((entry) => command === undefined || entry.record.command === command)
      .sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
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
    const { Item } = await this.client.send(new GetCommand({ TableName: table, Key: { [stateKeys.partition]: positionKey(executionId) }, ConsistentRead: true }));
    if (!Item) return undefined;
    const { chain, fromSeq } = JSON.parse(String(Item.value)) as { chain: string; fromSeq: number };
    const entries: ChainedExecution['entries'] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const response = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk >= :from',
          FilterExpression: 'executionId = :id',
          ExpressionAttributeValues: { ':pk': chainPartition(chain), ':from': seqKey(fromSeq), ':id': executionId },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
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

  private async writePosition(executionId: string, chain: string, fromSeq: number): Promise<void> {
    const expiresAt = this.now() + (this.options.positionTtlMs ?? dynamoAuditDefaults.positionTtlMs);
    await this.client.send(
      new PutCommand({
        TableName: this.options.positionTable!,
        Item: {
          [stateKeys.partition]: positionKey(executionId),
          owner: executionId,
          expiresAt,
          [stateKeys.ttl]: Math.ceil(expiresAt / 1000),
          value: JSON.stringify({ chain, fromSeq }),
        },
      }),
    );
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

    let startKey = decodeCursor(query.cursor, partition, value);
    const executionIds: { executionId: string; pk: string; kind: string }[] = [];
    for (let page = 0; page < 10 && executionIds.length < query.limit; page++) {
      const response = await this.client.send(
        new QueryCommand({
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
        }),
      );
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
      ...(startKey ? { cursor: Buffer.from(JSON.stringify(startKey)).toString('base64url') } : {}),
      ...(withheld.length ? { withheld } : {}),
    };
  }

  async *readChain(chain: string, options: { since?: string } = {}): AsyncIterable<ChainedEntry> {
    let startKey: Record<string, unknown> | undefined;
    const since = options.since ? Date.parse(options.since) : undefined;
    let started = since === undefined;
    do {
      const response = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': chainPartition(chain) },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of response.Items ?? []) {
        // `since` picks where the walk starts; from there on every record is checked.
        if (!started && recordTime(item.record) >= since!) started = true;
        if (!started) continue;
        yield { ...toChainedEntry(item), listed: listedOf(item) };
      }
      startKey = response.LastEvaluatedKey;
    } while (startKey);
  }

  /**
   * Verify's look beyond the chains: every item the `all` index and the
   * `byCommand` index of each command show (the audit role may Query, not Scan)
   * must be the attempt of a chain of these commands. A forged item that carries
   * none of these attributes is found by no enumeration without a scan; reads
   * ignore it all the same (they accept only chained, verified records).
   */
  async findStrays(commands: readonly string[], options: { everything?: boolean } = {}): Promise<StrayItem[]> {
    try {
      const walked = new Set(commands.flatMap(chainsOf).map(chainPartition));
      const strays = new Map<string, StrayItem>();
      const { byCommand, all } = auditKeys;
      const sources: [string, string, string][] = [...(options.everything ? [[all.index, all.partition, ALL] as [string, string, string]] : []), ...commands.map((command): [string, string, string] => [byCommand.index, byCommand.partition, command])];
      for (const [index, partition, value] of sources) {
        let startKey: Record<string, unknown> | undefined;
        do {
          const response = await this.client.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: index,
              KeyConditionExpression: '#p = :p',
              ExpressionAttributeNames: { '#p': partition, '#k': 'kind' },
              ExpressionAttributeValues: { ':p': value },
              ProjectionExpression: 'pk, sk, executionId, #k',
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
          );
          for (const item of response.Items ?? []) {
            const pk = String(item.pk);
            if (walked.has(pk) && item.kind === 'attempt') continue;
            strays.set(`${pk}\n${String(item.sk)}`, {
              pk,
              sk: String(item.sk),
              index,
              ...(item.executionId !== undefined ? { executionId: String(item.executionId) } : {}),
              ...(item.kind !== undefined ? { kind: String(item.kind) } : {}),
            });
          }
          startKey = response.LastEvaluatedKey;
        } while (startKey);
      }
      return [...strays.values()];
    } catch (error) {
      throw asStoreError(error);
    }
  }

  private listAttributes(record: Extract<AuditEntry, { kind: 'attempt' }>['record']) {
    const { indexSort, byActor, byCommand, all } = auditKeys;
    return {
      [indexSort]: record.executionId,
      [byActor.partition]: actorKey(record.actor),
      [byCommand.partition]: record.command,
      [all.partition]: ALL,
    };
  }

  private async readHead(chain: string): Promise<{ seq: number; hash: string }> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': chainPartition(chain) },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const last = Items[0];
    return last ? { seq: Number(last.seq), hash: String(last.hash) } : { seq: 0, hash: GENESIS_HASH };
  }

  /** Every item the `byExecution` index holds for the id: chained or not, to be checked by the caller. */
  private async itemsOf(executionId: string): Promise<Record<string, unknown>[]> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: auditKeys.byExecution.index,
        KeyConditionExpression: 'executionId = :id',
        ExpressionAttributeValues: { ':id': executionId },
      }),
    );
    return Items;
  }
}

const KIND_ORDER: Record<AuditKind, number> = { attempt: 0, decision: 1, start: 2, outcome: 3 };

/** The list-index attributes an item carries (not covered by its hash). */
function listedOf(item: Record<string, unknown>): NonNullable<ChainedEntry['listed']> {
  const { indexSort, byActor, byCommand, all } = auditKeys;
  const value = (name: string) => (item[name] === undefined ? undefined : String(item[name]));
  const listed: NonNullable<ChainedEntry['listed']> = {};
  for (const [key, name] of [['listSk', indexSort], ['actorKey', byActor.partition], ['command', byCommand.partition], ['listAll', all.partition]] as const) {
    const v = value(name);
    if (v !== undefined) listed[key] = v;
  }
  return listed;
}

function toChainedEntry(item: Record<string, unknown>): ChainedEntry {
  return {
    kind: item.kind as AuditKind,
    executionId: String(item.executionId),
    seq: Number(String(item.sk)),
    prevHash: String(item.prevHash),
    hash: String(item.hash),
    recordJson: String(item.record),
  };
}

/** Resolves when `promise` settles or after `ms`, whichever is first. */
function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise.then(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

function recordTime(json: unknown): number {
  try {
    const record = JSON.parse(String(json));
    return Date.parse(record.startedAt ?? record.finishedAt ?? record.at ?? '') || 0;
  } catch {
    return 0;
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

/** The cursor is the last key of a page; it is checked so that it can only continue the same query. */
function decodeCursor(cursor: string | undefined, partition: string, value: string): Record<string, string> | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('cursor is not one this service issued');
  }
  // Exactly the key of an index item of this query: anything else DynamoDB would refuse, as a fault of ours.
  const expected = new Set(['pk', 'sk', auditKeys.indexSort, partition]);
  if (
    typeof key !== 'object' ||
    key === null ||
    Array.isArray(key) ||
    Object.keys(key).length !== expected.size ||
    !Object.entries(key).every(([name, v]) => expected.has(name) && typeof v === 'string') ||
    (key as Record<string, string>)[partition] !== value
  ) {
    throw new InvalidCursorError('cursor is not one this service issued for this query');
  }
  return key as Record<string, string>;
}
