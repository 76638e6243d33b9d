/**
 * The DynamoDB client both stores (audit and state) use: one factory, so that
 * both fail the same way, fast, when DynamoDB does not answer.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface DynamoClientOptions {
  region: string;
  /** e.g. dynalite or DynamoDB Local */
  endpoint?: string;
  /** Default 2: fail closed fast rather than hold a request through the SDK's default retries. */
  maxAttempts?: number;
  /** Milliseconds; default 2000. */
  requestTimeoutMs?: number;
}

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
