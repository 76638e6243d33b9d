/**
 * Shared by the security, fuzz and fault suites: a command whose runs can be
 * counted, and a view of the audit table that does not depend on its item
 * layout (it reads each item's execution id and kind from whatever the store
 * wrote: `executionId`/`kind` attributes, the JSON `record`, or `pk`/`sk`).
 */
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand as DocumentScanCommand } from '@aws-sdk/lib-dynamodb';
import { Type } from '@sinclair/typebox';
import { defineCommand, type CommandLoader } from '../../src/command.js';
import { UNAUTHORIZED_MESSAGE } from '../../src/errors.js';
import type { TestDynamo } from '../support/dynalite.js';

/** A command with an observable side effect: every run is counted, by label. */
export function sideEffectCommand(): { loader: CommandLoader; runs: string[] } {
  const runs: string[] = [];
  const loader: CommandLoader = async () => ({
    default: defineCommand({
      description: 'Records that it ran (test only).',
      args: Type.Object({ label: Type.Optional(Type.String({ maxLength: 256 })) }),
      run: ({ label }) => {
        runs.push(label ?? 'touched');
        return { touched: true };
      },
      plan: ({ label }) => ({ wouldTouch: label ?? 'touched' }),
    }),
  });
  return { loader, runs };
}

/** Where the audit table is: a test dynalite, or any endpoint and table. */
export type AuditTable = Pick<TestDynamo, 'client' | 'tableName'>;

/** Every item of the audit table, unmarshalled. */
export async function scanItems(dynamo: AuditTable): Promise<Record<string, unknown>[]> {
  // Not destroyed after use: it shares the test's client.
  const documents = DynamoDBDocumentClient.from(dynamo.client);
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new DocumentScanCommand({ TableName: dynamo.tableName, ConsistentRead: true, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

export async function countItems(dynamo: AuditTable): Promise<number> {
  let count = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo.client.send(
      new ScanCommand({ TableName: dynamo.tableName, Select: 'COUNT', ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
    );
    count += page.Count ?? 0;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return count;
}

export type RecordKind = 'attempt' | 'outcome' | 'other';

/** The execution an item belongs to and what kind of record it is, whatever the layout. */
export function classifyItem(item: Record<string, unknown>): { executionId?: string; kind: RecordKind } {
  let record: Record<string, unknown> | undefined;
  if (typeof item.record === 'string') {
    try {
      record = JSON.parse(item.record) as Record<string, unknown>;
    } catch {
      record = undefined;
    }
  }
  const pk = typeof item.pk === 'string' ? item.pk : '';
  const executionId =
    (typeof item.executionId === 'string' && item.executionId) ||
    (typeof record?.executionId === 'string' && record.executionId) ||
    (pk.startsWith('EXEC#') ? pk.slice(5) : undefined) ||
    undefined;
  const declared = typeof item.kind === 'string' ? item.kind : typeof item.sk === 'string' ? item.sk.toLowerCase() : '';
  let kind: RecordKind = declared === 'attempt' ? 'attempt' : declared === 'outcome' ? 'outcome' : 'other';
  if (kind === 'other' && record) {
    if ('actor' in record && 'args' in record) kind = 'attempt';
    else if ('finishedAt' in record) kind = 'outcome';
  }
  return { ...(executionId ? { executionId } : {}), kind };
}

export interface AuditCensus {
  /** executionId → how many attempt and outcome records it has. */
  executions: Map<string, { attempt: number; outcome: number; other: number }>;
  /** Items that name no execution (e.g. bookkeeping of the store). */
  unattributed: number;
  items: Record<string, unknown>[];
}

export async function auditCensus(dynamo: AuditTable): Promise<AuditCensus> {
  const items = await scanItems(dynamo);
  const executions: AuditCensus['executions'] = new Map();
  let unattributed = 0;
  for (const item of items) {
    const { executionId, kind } = classifyItem(item);
    if (!executionId) {
      unattributed++;
      continue;
    }
    const entry = executions.get(executionId) ?? { attempt: 0, outcome: 0, other: 0 };
    entry[kind]++;
    executions.set(executionId, entry);
  }
  return { executions, unattributed, items };
}

/**
 * Checks that exactly the given executions are in the audit, each with one
 * attempt and one outcome record. Returns the problems found, empty if none.
 */
export function reconcile(census: AuditCensus, executed: Iterable<string>): string[] {
  const problems: string[] = [];
  const expected = new Set(executed);
  for (const id of expected) {
    const entry = census.executions.get(id);
    if (!entry) problems.push(`${id}: no audit record`);
    else {
      if (entry.attempt !== 1) problems.push(`${id}: ${entry.attempt} attempt records`);
      if (entry.outcome !== 1) problems.push(`${id}: ${entry.outcome} outcome records`);
    }
  }
  for (const id of census.executions.keys()) {
    if (!expected.has(id)) problems.push(`${id}: audit records for an execution no response reported`);
  }
  return problems;
}

/** The one 401 body every authentication failure gets. */
export const UNAUTHORIZED_BODY = JSON.stringify({ error: { code: 'Unauthorized', message: UNAUTHORIZED_MESSAGE } });

/** Bounds a promise in time, so that a hang fails the test instead of stalling the run. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
