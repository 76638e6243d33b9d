/**
 * The DynamoDB audit store. Each record is kept as one JSON string (`record`)
 * beside the few attributes DynamoDB indexes: what was written is what is read
 * back, byte for byte, whatever values a command returned (DynamoDB numbers and
 * empty sets would otherwise reshape them).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { auditKeys } from './table.js';
import {
  InvalidCursorError,
  actorKey,
  mergeExecution,
  type AttemptRecord,
  type AuditStore,
  type ExecutionPage,
  type ExecutionQuery,
  type ExecutionRecord,
  type OutcomeRecord,
} from './store.js';

export interface DynamoAuditStoreOptions {
  tableName: string;
  region: string;
  /** e.g. dynalite or DynamoDB Local */
  endpoint?: string;
  /** Default 2: fail closed fast rather than hold a request through the SDK's default retries. */
  maxAttempts?: number;
  /** Milliseconds; default 2000. */
  requestTimeoutMs?: number;
  now?: () => number;
}

const ATTEMPT = 'ATTEMPT';
const OUTCOME = 'OUTCOME';
const ALL = 'ALL';
const partitionOf = (executionId: string) => `EXEC#${executionId}`;

export function createDynamoClient(options: Pick<DynamoAuditStoreOptions, 'region' | 'endpoint' | 'maxAttempts' | 'requestTimeoutMs'>) {
  const client = new DynamoDBClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    maxAttempts: options.maxAttempts ?? 2,
    requestHandler: { connectionTimeout: 1000, requestTimeout: options.requestTimeoutMs ?? 2000 },
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

export class DynamoAuditStore implements AuditStore {
  private readonly table: string;
  private readonly now: () => number;

  constructor(
    options: DynamoAuditStoreOptions,
    private readonly client: DynamoDBDocumentClient = createDynamoClient(options),
  ) {
    this.table = options.tableName;
    this.now = options.now ?? Date.now;
  }

  async recordAttempt(record: AttemptRecord): Promise<void> {
    const { indexSort, byActor, byCommand, all } = auditKeys;
    await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: partitionOf(record.executionId),
          sk: ATTEMPT,
          [indexSort]: record.executionId,
          [byActor.partition]: actorKey(record.actor),
          [byCommand.partition]: record.command,
          [all.partition]: ALL,
          status: record.status,
          startedAt: record.startedAt,
          record: JSON.stringify(record),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async recordOutcome(record: OutcomeRecord): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: partitionOf(record.executionId),
          sk: OUTCOME,
          status: record.status,
          finishedAt: record.finishedAt,
          record: JSON.stringify(record),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async getExecution(executionId: string): Promise<ExecutionRecord | undefined> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': partitionOf(executionId) },
        ConsistentRead: true,
      }),
    );
    const attempt = Items.find((item) => item.sk === ATTEMPT);
    if (!attempt) return undefined;
    const outcome = Items.find((item) => item.sk === OUTCOME);
    return mergeExecution(parse(attempt), outcome ? parse(outcome) : undefined, this.now());
  }

  async listExecutions(query: ExecutionQuery): Promise<ExecutionPage> {
    const { byActor, byCommand, all } = auditKeys;
    const [index, partition, value] = query.actorKey
      ? [byActor.index, byActor.partition, query.actorKey]
      : query.command
        ? [byCommand.index, byCommand.partition, query.command]
        : [all.index, all.partition, ALL];
    // An actor's list filtered by command cannot use a key condition for both; filter, and page on.
    const filterCommand = query.actorKey && query.command ? query.command : undefined;

    let startKey = decodeCursor(query.cursor, partition, value);
    const attempts: AttemptRecord[] = [];
    for (let page = 0; page < 10 && attempts.length < query.limit; page++) {
      const response = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index,
          KeyConditionExpression: '#p = :p',
          ExpressionAttributeNames: { '#p': partition, ...(filterCommand ? { '#c': byCommand.partition } : {}) },
          ExpressionAttributeValues: { ':p': value, ...(filterCommand ? { ':c': filterCommand } : {}) },
          ...(filterCommand ? { FilterExpression: '#c = :c' } : {}),
          ScanIndexForward: false,
          Limit: query.limit - attempts.length,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      attempts.push(...(response.Items ?? []).map((item) => parse<AttemptRecord>(item)));
      startKey = response.LastEvaluatedKey;
      if (!startKey) break;
    }

    const outcomes = await this.outcomesOf(attempts.map((attempt) => attempt.executionId));
    const now = this.now();
    return {
      executions: attempts.map((attempt) => mergeExecution(attempt, outcomes.get(attempt.executionId), now)),
      ...(startKey ? { cursor: encodeCursor(startKey) } : {}),
    };
  }

  private async outcomesOf(executionIds: string[]): Promise<Map<string, OutcomeRecord>> {
    const outcomes = new Map<string, OutcomeRecord>();
    let keys: Record<string, unknown>[] = executionIds.map((id) => ({ pk: partitionOf(id), sk: OUTCOME }));
    for (let round = 0; keys.length > 0 && round < 5; round++) {
      const response = await this.client.send(
        new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys.slice(0, 100), ConsistentRead: true } } }),
      );
      for (const item of response.Responses?.[this.table] ?? []) {
        const outcome = parse<OutcomeRecord>(item);
        outcomes.set(outcome.executionId, outcome);
      }
      keys = [...(response.UnprocessedKeys?.[this.table]?.Keys ?? []), ...keys.slice(100)];
    }
    return outcomes;
  }
}

function parse<T = AttemptRecord>(item: Record<string, unknown>): T {
  return JSON.parse(String(item.record)) as T;
}

/** The cursor is the last key of a page; it is checked so that it can only continue the same query. */
function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string | undefined, partition: string, value: string): Record<string, string> | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('cursor is not one this service issued');
  }
  const allowed = new Set(['pk', 'sk', auditKeys.indexSort, partition]);
  if (
    typeof key !== 'object' ||
    key === null ||
    Array.isArray(key) ||
    !Object.entries(key).every(([name, v]) => allowed.has(name) && typeof v === 'string') ||
    (key as Record<string, string>)[partition] !== value
  ) {
    throw new InvalidCursorError('cursor is not one this service issued for this query');
  }
  return key as Record<string, string>;
}
