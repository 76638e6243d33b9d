/**
 * Verify's walks over the DynamoDB audit table (`GET /__manage__/audit/verify`):
 * each chain from its start, and the indexes, for items that are not where a
 * record belongs. Requests' own reads are in dynamodb.ts.
 */
import type { DynamoDocumentClient } from '../dynamo-client.js';
import { auditKeys } from './table.js';
import { chainsOf } from './chain.js';
import { ALL, chainPartition, listedOf, recordTime, toChainedEntry } from './dynamodb-items.js';
import { asStoreError } from '../limits.js';
import type { ChainedEntry, StrayItem } from './store.js';

/**
 * One chain's items in order, with strongly consistent reads, as verify walks
 * them; `since` (an ISO time) skips the records before it.
 */
export async function* walkChain(client: DynamoDocumentClient, table: string, chain: string, options: { since?: string } = {}): AsyncIterable<ChainedEntry> {
  let startKey: Record<string, unknown> | undefined;
  const since = options.since ? Date.parse(options.since) : undefined;
  let started = since === undefined;
  do {
    const response = await client.query({
      TableName: table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': chainPartition(chain) },
      ConsistentRead: true,
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    });
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
export async function findStrayItems(client: DynamoDocumentClient, table: string, commands: readonly string[], options: { everything?: boolean } = {}): Promise<StrayItem[]> {
  try {
    const walked = new Set(commands.flatMap(chainsOf).map(chainPartition));
    const strays = new Map<string, StrayItem>();
    const { byCommand, all } = auditKeys;
    const sources: [string, string, string][] = [...(options.everything ? [[all.index, all.partition, ALL] as [string, string, string]] : []), ...commands.map((command): [string, string, string] => [byCommand.index, byCommand.partition, command])];
    for (const [index, partition, value] of sources) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const response = await client.query({
          TableName: table,
          IndexName: index,
          KeyConditionExpression: '#p = :p',
          ExpressionAttributeNames: { '#p': partition, '#k': 'kind' },
          ExpressionAttributeValues: { ':p': value },
          ProjectionExpression: 'pk, sk, executionId, #k',
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        });
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
