/**
 * The DynamoDB client both stores (audit and state) use: the four operations
 * they make, over DynamoDB's JSON protocol, signed with SigV4
 * (../aws/signed-request.ts says why not the SDK's client). Values go in and
 * come out as plain JavaScript, converted by the SDK's own `util-dynamodb`, as
 * its document client does.
 *
 * One factory, so that both stores fail the same way, fast, when DynamoDB does
 * not answer: a short timeout and few attempts, so that a request fails closed
 * (503) in milliseconds instead of being held through long retries.
 */
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { AwsCallError, regionalEndpoint, signedPost, type CredentialSource } from '../aws/signed-request.js';

export interface DynamoClientOptions {
  region: string;
  /** e.g. dynalite or DynamoDB Local; default the region's DynamoDB. */
  endpoint?: string;
  /** Default 2: fail closed fast rather than hold a request through many retries. */
  maxAttempts?: number;
  /** Milliseconds per attempt, connection included; default 2000. */
  requestTimeoutMs?: number;
  /** Default: the Lambda's own, from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. */
  credentials?: CredentialSource;
}

export const dynamoClientDefaults = { maxAttempts: 2, requestTimeoutMs: 2000, retryBaseDelayMs: 50 } as const;

/** A key or an item, as plain values. */
export type Item = Record<string, unknown>;

interface Expressions {
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
}

export interface GetInput {
  TableName: string;
  Key: Item;
  ConsistentRead?: boolean;
}
export interface PutInput extends Expressions {
  TableName: string;
  Item: Item;
  ConditionExpression?: string;
}
export interface DeleteInput extends Expressions {
  TableName: string;
  Key: Item;
  ConditionExpression?: string;
  ReturnValues?: 'NONE' | 'ALL_OLD';
}
export interface QueryInput extends Expressions {
  TableName: string;
  IndexName?: string;
  KeyConditionExpression: string;
  FilterExpression?: string;
  ProjectionExpression?: string;
  ScanIndexForward?: boolean;
  Limit?: number;
  ConsistentRead?: boolean;
  ExclusiveStartKey?: Item;
}

/** The DynamoDB operations the stores make, with values as plain JavaScript. */
export interface DynamoDocumentClient {
  get(input: GetInput): Promise<{ Item?: Item }>;
  /** Rejects with a {@link DynamoError} named `ConditionalCheckFailedException` when the condition fails. */
  put(input: PutInput): Promise<void>;
  delete(input: DeleteInput): Promise<{ Attributes?: Item }>;
  query(input: QueryInput): Promise<{ Items: Item[]; LastEvaluatedKey?: Item }>;
}

/**
 * DynamoDB's refusal, named as DynamoDB (and the SDK) name it:
 * `ConditionalCheckFailedException`, `ValidationException`,
 * `ProvisionedThroughputExceededException`, …
 */
export class DynamoError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly status: number,
    /** Worth another attempt: throttling, a server error, a corrupted answer. */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

const RETRYABLE = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionInProgressException',
]);

export function createDynamoClient(options: DynamoClientOptions): DynamoDocumentClient {
  const endpoint = options.endpoint ?? regionalEndpoint('dynamodb', options.region);
  const maxAttempts = Math.max(1, options.maxAttempts ?? dynamoClientDefaults.maxAttempts);
  const timeoutMs = options.requestTimeoutMs ?? dynamoClientDefaults.requestTimeoutMs;

  async function call(operation: string, input: object): Promise<Record<string, any>> {
    const body = JSON.stringify(input);
    for (let attempt = 1; ; attempt++) {
      try {
        return await callOnce(operation, body);
      } catch (error) {
        const retryable = (error instanceof DynamoError || error instanceof AwsCallError) && error.retryable;
        if (!retryable || attempt >= maxAttempts) throw error;
        // Full jitter: instances throttled together do not come back together.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * dynamoClientDefaults.retryBaseDelayMs * 2 ** attempt));
      }
    }
  }

  async function callOnce(operation: string, body: string): Promise<Record<string, any>> {
    const answer = await signedPost({
      service: 'dynamodb',
      region: options.region,
      endpoint,
      path: '/',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${operation}` },
      body,
      timeoutMs,
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    // DynamoDB sends a CRC32 of every answer; one that does not match was damaged on the way.
    const checksum = answer.headers['x-amz-crc32'];
    if (typeof checksum === 'string' && Number(checksum) !== crc32(answer.body)) {
      throw new DynamoError('CorruptedResponse', `DynamoDB's answer to ${operation} failed its CRC32 check`, answer.status, true);
    }
    const text = answer.body.toString('utf8');
    let parsed: Record<string, any> | undefined;
    try {
      parsed = text ? (JSON.parse(text) as Record<string, any>) : {};
    } catch {
      parsed = undefined;
    }
    if (answer.status === 200 && parsed) return parsed;
    throw errorOf(answer.status, parsed, answer.headers['x-amzn-errortype'], operation);
  }

  const values = (input: Expressions) =>
    input.ExpressionAttributeValues ? { ExpressionAttributeValues: marshall(input.ExpressionAttributeValues, { removeUndefinedValues: true }) } : {};

  return {
    async get(input) {
      const output = await call('GetItem', { ...input, Key: marshall(input.Key) });
      return output.Item ? { Item: unmarshall(output.Item) } : {};
    },
    async put(input) {
      await call('PutItem', { ...input, Item: marshall(input.Item, { removeUndefinedValues: true }), ...values(input) });
    },
    async delete(input) {
      const output = await call('DeleteItem', { ...input, Key: marshall(input.Key), ...values(input) });
      return output.Attributes ? { Attributes: unmarshall(output.Attributes) } : {};
    },
    async query(input) {
      const output = await call('Query', {
        ...input,
        ...values(input),
        ...(input.ExclusiveStartKey ? { ExclusiveStartKey: marshall(input.ExclusiveStartKey) } : {}),
      });
      return {
        Items: ((output.Items ?? []) as Record<string, any>[]).map((item) => unmarshall(item)),
        ...(output.LastEvaluatedKey ? { LastEvaluatedKey: unmarshall(output.LastEvaluatedKey) } : {}),
      };
    },
  };
}

/**
 * DynamoDB's error from its answer: `__type` is `com.amazonaws.dynamodb.v20120810#Name`;
 * the `x-amzn-ErrorType` header, when sent, is `Name:` followed by a URL.
 */
function errorOf(status: number, body: Record<string, any> | undefined, header: string | string[] | undefined, operation: string): DynamoError {
  const typed = typeof body?.__type === 'string' ? body.__type : typeof header === 'string' ? header : '';
  const name = typed.split('#').pop()!.split(':')[0]! || (status >= 500 ? 'InternalServerError' : 'UnknownError');
  const message = typeof body?.message === 'string' ? body.message : typeof body?.Message === 'string' ? body.Message : `DynamoDB answered ${status} to ${operation}`;
  return new DynamoError(name, message, status, status >= 500 || RETRYABLE.has(name));
}

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (IEEE), as DynamoDB computes `x-amz-crc32`. In JavaScript rather than
 * node:zlib's: loading zlib costs ≈ 5 ms at every cold start, this a few
 * microseconds per answer of a few kilobytes.
 */
function crc32(bytes: Uint8Array): number {
  const table = (crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  }));
  let crc = 0xffffffff;
  for (const byte of bytes) crc = table[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
