/**
 * The test DynamoDB enforces DynamoDB's real limits (test/support/dynamo-limits.ts),
 * through the real AWS SDK client; the stores turn those refusals into
 * InvalidRequest; and an execution reads back consistently while the indexes lag.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { DynamoAuditStore } from '../../src/stores/audit/dynamodb.js';
import { DynamoStateStore } from '../../src/stores/state/dynamodb.js';
import { InvalidRequest } from '../../src/errors.js';
import type { AttemptRecord } from '../../src/stores/audit/store.js';
import { newExecutionId } from '../../src/ids.js';

let dynamo: TestDynamo;
before(async () => {
  dynamo = await startDynalite('mm-limits-audit');
});
after(() => dynamo.close());

const refused = (pattern: RegExp) => (error: Error) => {
  assert.equal(error.name, 'ValidationException');
  assert.match(error.message, pattern);
  return true;
};

const chainItem = (extra: Record<string, { S: string }>) => ({
  pk: { S: 'CHAIN#x#0' },
  sk: { S: `${Math.random()}` },
  executionId: { S: 'e' },
  ...extra,
});

describe('the test DynamoDB refuses what DynamoDB refuses', () => {
  it('an item over 400 KB', async () => {
    await assert.rejects(
      dynamo.client.send(new PutItemCommand({ TableName: dynamo.tableName, Item: chainItem({ record: { S: 'x'.repeat(400 * 1024) } }) })),
      refused(/Item size has exceeded the maximum allowed size/),
    );
    // Multi-byte characters count in UTF-8 bytes: 140,000 × 3 bytes.
    await assert.rejects(
      dynamo.client.send(new PutItemCommand({ TableName: dynamo.tableName, Item: chainItem({ record: { S: '€'.repeat(140_000) } }) })),
      refused(/Item size/),
    );
    await dynamo.client.send(new PutItemCommand({ TableName: dynamo.tableName, Item: chainItem({ record: { S: 'x'.repeat(300 * 1024) } }) }));
  });

  it('a partition key over 2,048 bytes and a sort key over 1,024 bytes, on the table and its indexes', async () => {
    await assert.rejects(
      dynamo.client.send(new PutItemCommand({ TableName: dynamo.tableName, Item: { ...chainItem({}), pk: { S: 'p'.repeat(2049) } } })),
      refused(/Size of hashkey has exceeded the maximum size limit of2048 bytes/),
    );
    await assert.rejects(
      dynamo.client.send(new PutItemCommand({ TableName: dynamo.tableName, Item: { ...chainItem({}), sk: { S: 's'.repeat(1025) } } })),
      refused(/range keys has exceeded the size limit of 1024 bytes/),
    );
    // The byActor index key: `token <issuer> <sub>` with a long sub.
    await assert.rejects(
      dynamo.client.send(
        new PutItemCommand({ TableName: dynamo.tableName, Item: chainItem({ actorKey: { S: `token https://issuer ${'x'.repeat(3000)}` }, listSk: { S: 'l' } }) }),
      ),
      refused(/hashkey.*byActor/),
    );
    await assert.rejects(
      dynamo.client.send(new PutItemCommand({ TableName: dynamo.tableName, Item: chainItem({ command: { S: 'c' }, listSk: { S: 'l'.repeat(1025) } }) })),
      refused(/range keys/),
    );
    await assert.rejects(
      dynamo.client.send(new GetItemCommand({ TableName: dynamo.stateTableName, Key: { pk: { S: 'k'.repeat(2049) } } })),
      refused(/hashkey/),
    );
    await assert.rejects(
      dynamo.client.send(
        new QueryCommand({ TableName: dynamo.tableName, IndexName: 'byActor', KeyConditionExpression: 'actorKey = :a', ExpressionAttributeValues: { ':a': { S: 'a'.repeat(2049) } } }),
      ),
      refused(/hashkey/),
    );
    assert.ok(dynamo.limits.rejections.length >= 6);
  });
});

describe('the stores', () => {
  it('turn a ValidationException into InvalidRequest (a 400), not an outage', async () => {
    const state = new DynamoStateStore({ tableName: dynamo.stateTableName, region: 'us-east-1', endpoint: dynamo.endpoint });
    await assert.rejects(state.create({ pk: 'BIG', owner: 'o', expiresAt: Date.now() + 60_000, value: 'x'.repeat(500_000) }), InvalidRequest);
    await assert.rejects(state.get('k'.repeat(3000)), InvalidRequest);
  });

  it('cap a record by its stored bytes and read an execution consistently while the indexes lag', async () => {
    const audit = new DynamoAuditStore({ tableName: dynamo.tableName, region: 'us-east-1', endpoint: dynamo.endpoint, positionTable: dynamo.stateTableName });
    const executionId = newExecutionId();
    const now = new Date().toISOString();
    const attempt: AttemptRecord = {
      executionId,
      command: 'big',
      status: 'running',
      dryRun: false,
      actor: { kind: 'invoke', name: 'test' },
      source: { channel: 'invoke' },
      args: {},
      startedAt: now,
      deadline: new Date(Date.now() + 60_000).toISOString(),
      timeLimitMs: 60_000,
    };
    dynamo.limits.indexLagMs = 60_000;
    try {
      await audit.append({ kind: 'attempt', record: attempt });
      const output = Array.from({ length: 200 }, () => '\u0000'.repeat(1000));
      await audit.append({ kind: 'outcome', record: { executionId, command: 'big', status: 'succeeded', finishedAt: now, durationMs: 1, result: null, output } });
      // The index does not show it yet…
      assert.equal((await audit.listExecutions({ command: 'big', limit: 10 })).executions.length, 0);
      // …the consistent read does, and so does a plain read (which falls back to it).
      for (const options of [{ consistent: true }, {}]) {
        const record = await audit.getExecution(executionId, options);
        assert.equal(record?.status, 'succeeded');
        assert.ok(record.truncated?.output && (record.truncated.output.lines ?? 0) > 0, JSON.stringify(record.truncated));
        assert.equal(record.output!.length + (record.truncated.output.lines ?? 0), 200);
      }
      const chained = await audit.readExecution(executionId);
      assert.deepEqual(chained?.entries.map((e) => [e.kind, e.verified]), [['attempt', true], ['outcome', true]]);
    } finally {
      dynamo.limits.indexLagMs = 0;
    }
  });
});
