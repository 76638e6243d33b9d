/**
 * The key layouts of the two tables. serverless.yml declares the same tables
 * for deployment (a test checks that they agree); the local stack and the
 * tests create them from here.
 *
 * Audit table (append-only): one item per record, keyed by its command's chain
 * and sequence number, so appending is a conditional put on the next number.
 * Attempt items, the first record of each execution, also carry the list
 * index attributes; every item carries its execution id for `byExecution`.
 *
 * State table (mutable, expiring): idempotency keys, leases of exclusive
 * commands and pending approvals, so that the audit table never needs an
 * update or a delete.
 */

interface KeyElement {
  AttributeName: string;
  KeyType: 'HASH' | 'RANGE';
}

/** A table's CreateTable request, in DynamoDB's own shape (the local stack and the tests send it as is). */
export interface TableDefinition {
  TableName: string;
  BillingMode: 'PAY_PER_REQUEST';
  AttributeDefinitions: { AttributeName: string; AttributeType: 'S' }[];
  KeySchema: KeyElement[];
  GlobalSecondaryIndexes?: { IndexName: string; KeySchema: KeyElement[]; Projection: { ProjectionType: 'ALL' } }[];
}

export const auditKeys = {
  partition: 'pk',
  sort: 'sk',
  /** Sort key of the list indexes, on attempt items: the execution id (ids sort by time). */
  indexSort: 'listSk',
  byExecution: { index: 'byExecution', partition: 'executionId' },
  byActor: { index: 'byActor', partition: 'actorKey' },
  byCommand: { index: 'byCommand', partition: 'command' },
  /** One partition for "everything": an ops tool writes far below one partition's 1,000 writes/s. */
  all: { index: 'all', partition: 'listAll' },
} as const;

export const stateKeys = {
  partition: 'pk',
  /** Epoch seconds; DynamoDB's TTL removes expired items eventually, and readers ignore them at once. */
  ttl: 'ttl',
} as const;

export function auditTableDefinition(tableName: string): TableDefinition {
  const { partition, sort, indexSort, byExecution, byActor, byCommand, all } = auditKeys;
  const index = (name: string, hash: string, range: string) => ({
    IndexName: name,
    KeySchema: [
      { AttributeName: hash, KeyType: 'HASH' as const },
      { AttributeName: range, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [partition, sort, indexSort, byExecution.partition, byActor.partition, byCommand.partition, all.partition].map(
      (name) => ({ AttributeName: name, AttributeType: 'S' }),
    ),
    KeySchema: [
      { AttributeName: partition, KeyType: 'HASH' },
      { AttributeName: sort, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      index(byExecution.index, byExecution.partition, sort),
      index(byActor.index, byActor.partition, indexSort),
      index(byCommand.index, byCommand.partition, indexSort),
      index(all.index, all.partition, indexSort),
    ],
  };
}

export function stateTableDefinition(tableName: string): TableDefinition {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: stateKeys.partition, AttributeType: 'S' }],
    KeySchema: [{ AttributeName: stateKeys.partition, KeyType: 'HASH' }],
  };
}
