/**
 * The local stack's tables: created where the DynamoDB endpoint is (embedded
 * dynalite, or AWS_ENDPOINT_URL_DYNAMODB), with the layouts of
 * src/stores/audit/table.ts. The state table expires its items through TTL
 * (attribute `ttl`), as the plugin declares it for deployment: TTL is switched
 * on wherever the endpoint supports it (DynamoDB Local, LocalStack, a real
 * account). dynalite has no TTL; there the state store ignores expired items itself.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import { auditTableDefinition, stateKeys, stateTableDefinition } from '../src/stores/audit/table.js';

export interface TableNames {
  audit: string;
  state: string;
}

export interface EnsureTablesOptions {
  endpoint: string;
  region: string;
  /** The stack's environment (its credentials), not necessarily this process's. */
  env: NodeJS.ProcessEnv;
  tables: TableNames;
}

/** What was done to one table, for the start-up log. */
export interface TableReport {
  name: string;
  created: boolean;
  /** `enabled`: TTL is on (now or before); `unsupported`: the endpoint has no TTL (dynalite). */
  ttl?: 'enabled' | 'unsupported';
}

function isSet(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

export function dynamoClient(endpoint: string, region: string, env: NodeJS.ProcessEnv): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region,
    ...(isSet(env.AWS_ACCESS_KEY_ID) && isSet(env.AWS_SECRET_ACCESS_KEY)
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(isSet(env.AWS_SESSION_TOKEN) ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 },
  });
}

/** Create each table that is missing; switch TTL on for the state table. */
export async function ensureTables(options: EnsureTablesOptions): Promise<TableReport[]> {
  const { endpoint } = options;
  const client = dynamoClient(endpoint, options.region, options.env);
  try {
    const audit = await ensureTable(client, endpoint, auditTableDefinition(options.tables.audit));
    const state = await ensureTable(client, endpoint, stateTableDefinition(options.tables.state));
    state.ttl = await ensureTimeToLive(client, endpoint, options.tables.state);
    return [audit, state];
  } finally {
    client.destroy();
  }
}

async function ensureTable(client: DynamoDBClient, endpoint: string, table: CreateTableCommandInput): Promise<TableReport> {
  const TableName = table.TableName!;
  try {
    await client.send(new DescribeTableCommand({ TableName }));
    return { name: TableName, created: false };
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) {
      throw new Error(`cannot describe table "${TableName}" at ${endpoint}: ${(error as Error).message}`);
    }
  }
  try {
    await client.send(new CreateTableCommand(table));
    await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1 }, { TableName });
  } catch (error) {
    throw new Error(`cannot create table "${TableName}" at ${endpoint}: ${(error as Error).message}`);
  }
  return { name: TableName, created: true };
}

/** The state table's TTL on attribute `ttl`, unless it is on already or the endpoint has no TTL. */
async function ensureTimeToLive(client: DynamoDBClient, endpoint: string, TableName: string): Promise<TableReport['ttl']> {
  try {
    const { TimeToLiveDescription: current } = await client.send(new DescribeTimeToLiveCommand({ TableName }));
    if (
      (current?.TimeToLiveStatus === 'ENABLED' || current?.TimeToLiveStatus === 'ENABLING') &&
      current.AttributeName === stateKeys.ttl
    ) {
      return 'enabled';
    }
  } catch (error) {
    if (!unsupported(error)) throw new Error(`cannot read the TTL of table "${TableName}" at ${endpoint}: ${(error as Error).message}`);
    return 'unsupported';
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({ TableName, TimeToLiveSpecification: { AttributeName: stateKeys.ttl, Enabled: true } }),
    );
    return 'enabled';
  } catch (error) {
    if (unsupported(error)) return 'unsupported';
    throw new Error(`cannot enable TTL (attribute "${stateKeys.ttl}") on table "${TableName}" at ${endpoint}: ${(error as Error).message}`);
  }
}

/** dynalite answers operations it does not implement with UnknownOperationException. */
function unsupported(error: unknown): boolean {
  return (error as { name?: string })?.name === 'UnknownOperationException';
}
