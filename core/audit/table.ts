/**
 * The audit table's key layout. serverless.yml declares the same table for
 * deployment (a test checks that the two agree); the local stack and the tests
 * create it from here.
 *
 * Items are append-only: an execution is one `ATTEMPT` item written before the
 * command runs and one `OUTCOME` item written after, under the same partition.
 * Only attempt items carry the index attributes, so each index lists an
 * execution once, newest first (execution ids sort by time).
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export const auditKeys = {
  partition: 'pk',
  sort: 'sk',
  /** Index sort key on attempt items: the execution id. */
  indexSort: 'listSk',
  byActor: { index: 'byActor', partition: 'actorKey' },
  byCommand: { index: 'byCommand', partition: 'command' },
  /** One partition for "everything": an ops tool writes far below one partition's 1,000 writes/s. */
  all: { index: 'all', partition: 'listAll' },
} as const;

export function auditTableDefinition(tableName: string): CreateTableCommandInput {
  const { partition, sort, indexSort, byActor, byCommand, all } = auditKeys;
  const index = (name: string, hash: string) => ({
    IndexName: name,
    KeySchema: [
      { AttributeName: hash, KeyType: 'HASH' as const },
      { AttributeName: indexSort, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [partition, sort, indexSort, byActor.partition, byCommand.partition, all.partition].map(
      (name) => ({ AttributeName: name, AttributeType: 'S' as const }),
    ),
    KeySchema: [
      { AttributeName: partition, KeyType: 'HASH' },
      { AttributeName: sort, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      index(byActor.index, byActor.partition),
      index(byCommand.index, byCommand.partition),
      index(all.index, all.partition),
    ],
  };
}
