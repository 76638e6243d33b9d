/** A real DynamoDB API on loopback (dynalite), with the audit table created. */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import dynalite from 'dynalite';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { auditTableDefinition, stateTableDefinition } from '../../src/stores/audit/table.js';
import { startLimitsProxy, type LimitsProxy } from './dynamo-limits.js';

// The SDK wants credentials even for a local endpoint; these reach nothing real.
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
process.env.AWS_REGION ??= 'us-east-1';

export interface TestDynamo {
  /** The limits-enforcing proxy in front of dynalite (see dynamo-limits.ts): what DynamoDB would refuse, it refuses. */
  endpoint: string;
  /** dynalite itself, without the limits. */
  rawEndpoint: string;
  limits: LimitsProxy;
  tableName: string;
  stateTableName: string;
  client: DynamoDBClient;
  /** Stops answering: the port is closed. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startDynalite(tableName = 'mm-test-audit'): Promise<TestDynamo> {
  const server: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  // The limits proxy drops idle sockets first (after 4 s): dynalite never closes one it is about to reuse.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const rawEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Everything (table creation included, so that the proxy learns the key schemas) goes through the limits.
  const limits = await startLimitsProxy(rawEndpoint);
  const endpoint = limits.url;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', maxAttempts: 1 });
  await client.send(new CreateTableCommand(auditTableDefinition(tableName)));
  // The handler's default state table name: `<audit table>-state`.
  await client.send(new CreateTableCommand(stateTableDefinition(`${tableName}-state`)));
  let closed = false;
  const stop = async () => {
    if (closed) return;
    closed = true;
    await limits.close();
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    endpoint,
    rawEndpoint,
    limits,
    tableName,
    stateTableName: `${tableName}-state`,
    client,
    stop,
    close: async () => {
      client.destroy();
      await stop();
    },
  };
}
