/**
 * A loopback proxy in front of dynalite that enforces what real DynamoDB
 * enforces and dynalite does not (issue 11): the 400 KB item limit, 2,048-byte
 * partition keys and 1,024-byte sort keys — on the table's own keys and on
 * every global secondary index's key attributes — answering a
 * `ValidationException` (HTTP 400) with DynamoDB's own words. The handler's real
 * AWS SDK client talks to it like to DynamoDB.
 *
 * It can also delay the visibility of writes in global secondary indexes
 * (`indexLagMs`), as real DynamoDB does (GSIs are updated asynchronously):
 * items put less than `indexLagMs` ago are left out of Query answers on an index.
 *
 * The key schemas are learnt from the CreateTable requests that pass through it.
 */
import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

type Attr = Record<string, unknown>;

interface TableKeys {
  hash: string;
  range?: string;
  indexes: { name: string; hash: string; range?: string }[];
}

export const DYNAMO_LIMITS = {
  itemBytes: 400 * 1024,
  partitionKeyBytes: 2048,
  sortKeyBytes: 1024,
} as const;

export interface LimitsProxy {
  url: string;
  /** Index visibility lag in milliseconds (0: none). */
  indexLagMs: number;
  /** Every ValidationException this proxy answered, for assertions. */
  rejections: { target: string; message: string }[];
  close(): Promise<void>;
}

const VALIDATION = 'com.amazonaws.dynamodb.v20120810#ValidationException';

/** The size DynamoDB counts for an attribute value (typed wire format). */
export function attributeValueBytes(value: Attr): number {
  if (typeof value.S === 'string') return Buffer.byteLength(value.S);
  if (typeof value.N === 'string') {
    const digits = value.N.replace(/^[-+]/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    return Math.min(21, Math.ceil(Math.max(1, digits.length) / 2) + 1);
  }
  if (typeof value.B === 'string') return Buffer.from(value.B, 'base64').length;
  if ('BOOL' in value || 'NULL' in value) return 1;
  if (Array.isArray(value.SS)) return (value.SS as string[]).reduce((n, s) => n + Buffer.byteLength(s), 0);
  if (Array.isArray(value.NS)) return (value.NS as string[]).reduce((n, s) => n + attributeValueBytes({ N: s }), 0);
  if (Array.isArray(value.BS)) return (value.BS as string[]).reduce((n, s) => n + Buffer.from(s, 'base64').length, 0);
  if (Array.isArray(value.L)) return 3 + (value.L as Attr[]).reduce((n, v) => n + 1 + attributeValueBytes(v), 0);
  if (value.M && typeof value.M === 'object') return 3 + itemBytes(value.M as Record<string, Attr>) + Object.keys(value.M).length;
  return 0;
}

/** Attribute names plus values, in UTF-8 bytes: what the 400 KB limit counts. */
export function itemBytes(item: Record<string, Attr>): number {
  return Object.entries(item).reduce((n, [name, value]) => n + Buffer.byteLength(name) + attributeValueBytes(value), 0);
}

function keyProblem(keys: TableKeys, item: Record<string, Attr>, whole: boolean): string | undefined {
  const check = (name: string | undefined, limit: number, message: string) => {
    if (!name) return undefined;
    const value = item[name];
    if (!value) return undefined;
    return attributeValueBytes(value) > limit ? message : undefined;
  };
  const hashMessage = `One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of${DYNAMO_LIMITS.partitionKeyBytes} bytes`;
  const rangeMessage = `One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of ${DYNAMO_LIMITS.sortKeyBytes} bytes`;
  const problems = [check(keys.hash, DYNAMO_LIMITS.partitionKeyBytes, hashMessage), check(keys.range, DYNAMO_LIMITS.sortKeyBytes, rangeMessage)];
  if (whole) {
    for (const index of keys.indexes) {
      problems.push(
        check(index.hash, DYNAMO_LIMITS.partitionKeyBytes, `One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of${DYNAMO_LIMITS.partitionKeyBytes} bytes for index key ${index.hash} of index ${index.name}`),
        check(index.range, DYNAMO_LIMITS.sortKeyBytes, `One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of ${DYNAMO_LIMITS.sortKeyBytes} bytes for index key ${index.range} of index ${index.name}`),
      );
    }
  }
  return problems.find(Boolean);
}

export async function startLimitsProxy(targetEndpoint: string): Promise<LimitsProxy> {
  const target = new URL(targetEndpoint);
  const tables = new Map<string, TableKeys>();
  /** table|pk|sk → when it was last put (for the index lag). */
  const putAt = new Map<string, number>();
  const sockets = new Set<Socket>();
  // Idle upstream sockets are dropped after 4 s, before dynalite would close them (see dynalite.ts): a socket
  // closed by the server just as it is reused would reset the caller's request.
  const agent = new Agent({ keepAlive: true, timeout: 4000 });
  const itemKey = (table: string, keys: TableKeys, item: Record<string, Attr>) =>
    `${table}|${JSON.stringify(item[keys.hash] ?? null)}|${JSON.stringify(keys.range ? (item[keys.range] ?? null) : null)}`;

  const proxy: LimitsProxy = {
    url: '',
    indexLagMs: 0,
    rejections: [],
    close: async () => {
      agent.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  /** The ValidationException message for a request DynamoDB would refuse, if any. */
  const validate = (action: string, body: Record<string, any>): string | undefined => {
    const keys = tables.get(String(body.TableName));
    if (action === 'PutItem' && body.Item) {
      if (itemBytes(body.Item) > DYNAMO_LIMITS.itemBytes) return 'Item size has exceeded the maximum allowed size';
      return keys && keyProblem(keys, body.Item, true);
    }
    if ((action === 'GetItem' || action === 'DeleteItem' || action === 'UpdateItem') && body.Key && keys) {
      return keyProblem(keys, body.Key, false);
    }
    if (action === 'Query' && typeof body.KeyConditionExpression === 'string') {
      const names = body.KeyConditionExpression.match(/:[A-Za-z0-9_]+/g) ?? [];
      for (const name of names) {
        const value = body.ExpressionAttributeValues?.[name];
        if (value && attributeValueBytes(value) > DYNAMO_LIMITS.partitionKeyBytes) {
          return `One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of${DYNAMO_LIMITS.partitionKeyBytes} bytes`;
        }
      }
    }
    if (action === 'BatchGetItem' && body.RequestItems) {
      for (const [table, request] of Object.entries<any>(body.RequestItems)) {
        const tableKeys = tables.get(table);
        for (const key of request.Keys ?? []) {
          const problem = tableKeys && keyProblem(tableKeys, key, false);
          if (problem) return problem;
        }
      }
    }
    return undefined;
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const amzTarget = String(req.headers['x-amz-target'] ?? '');
      const action = amzTarget.split('.').pop() ?? '';
      let body: Record<string, any> = {};
      try {
        body = JSON.parse(raw.toString('utf8') || '{}');
      } catch {
        body = {};
      }
      if (action === 'CreateTable' && body.TableName && Array.isArray(body.KeySchema)) {
        const of = (schema: { AttributeName: string; KeyType: string }[]) => ({
          hash: schema.find((k) => k.KeyType === 'HASH')!.AttributeName,
          range: schema.find((k) => k.KeyType === 'RANGE')?.AttributeName,
        });
        tables.set(body.TableName, {
          ...of(body.KeySchema),
          indexes: [...(body.GlobalSecondaryIndexes ?? []), ...(body.LocalSecondaryIndexes ?? [])].map((index: any) => ({
            name: index.IndexName,
            ...of(index.KeySchema),
          })),
        });
      }
      const problem = validate(action, body);
      if (problem) {
        proxy.rejections.push({ target: amzTarget, message: problem });
        const payload = Buffer.from(JSON.stringify({ __type: VALIDATION, message: problem }));
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'content-length': String(payload.length), 'x-amzn-requestid': 'limits-proxy' }).end(payload);
        return;
      }
      const upstream = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers, agent }, (response) => {
        const parts: Buffer[] = [];
        response.on('data', (chunk: Buffer) => parts.push(chunk));
        response.on('end', () => {
          let payload = Buffer.concat(parts);
          const headers = { ...response.headers };
          const keys = tables.get(String(body.TableName));
          if (response.statusCode === 200 && keys) {
            if (action === 'PutItem' && body.Item) putAt.set(itemKey(body.TableName, keys, body.Item), Date.now());
            if (action === 'Query' && body.IndexName && proxy.indexLagMs > 0) {
              const answer = JSON.parse(payload.toString('utf8'));
              const now = Date.now();
              answer.Items = (answer.Items ?? []).filter((item: Record<string, Attr>) => {
                const at = putAt.get(itemKey(body.TableName, keys, item));
                return at === undefined || now - at >= proxy.indexLagMs;
              });
              answer.Count = answer.Items.length;
              payload = Buffer.from(JSON.stringify(answer));
              delete headers['x-amz-crc32'];
              headers['content-length'] = String(payload.length);
            }
          }
          if (!res.destroyed) res.writeHead(response.statusCode ?? 502, headers).end(payload);
        });
      });
      upstream.on('error', () => res.destroy());
      upstream.end(raw);
    });
  });
  // Longer than any client's idle sockets: the server never closes a connection a client is about to reuse.
  server.keepAliveTimeout = 120_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
