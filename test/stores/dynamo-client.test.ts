/**
 * The stores' DynamoDB client (src/stores/dynamo-client.ts) against the AWS
 * SDK's own client: for the same operation both send the same request, signed
 * the same way (checked by a SigV4 verifier written from the specification,
 * which must accept the SDK's request first); what one writes the other reads
 * back unchanged; DynamoDB's refusals keep DynamoDB's names; retries only what
 * is worth retrying.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { forward, startDynamoProxy, type DynamoProxy, type ProxiedRequest, type ProxyAction } from '../faults/support.js';
import { createDynamoClient, DynamoError, type DynamoDocumentClient } from '../../src/stores/dynamo-client.js';
import { AwsCallError, regionalEndpoint } from '../../src/aws/signed-request.js';

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token-of-the-role' };

type Recorded = Pick<ProxiedRequest, 'method' | 'url' | 'headers' | 'body'>;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** SigV4 as the specification states it: true when the request's signature is the one its secret makes. */
function verifySigV4(request: Recorded, secretAccessKey: string): { ok: boolean; signedHeaders: string[]; scope: string } {
  const authorization = String(request.headers.authorization);
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(authorization);
  assert.ok(match, `Authorization header: ${authorization}`);
  const [, , date, region, service, signedList, signature] = match;
  const signedHeaders = signedList!.split(';');
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${String(request.headers[name]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const url = new URL(request.url, 'http://x');
  const canonical = [request.method, url.pathname, url.search.slice(1), canonicalHeaders, signedList, sha256(request.body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', String(request.headers['x-amz-date']), scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date!), region!), service!), 'aws4_request');
  return { ok: createHmac('sha256', key).update(toSign).digest('hex') === signature, signedHeaders, scope };
}

let dynamo: TestDynamo;
/** The fault proxy in front of the test DynamoDB; `script` answers the next requests, then everything is forwarded. */
let recorder: DynamoProxy & { recorded: ProxiedRequest[]; script: ProxyAction[] };
let ours: DynamoDocumentClient;
let sdk: DynamoDBDocumentClient;

before(async () => {
  dynamo = await startDynalite('mm-client-audit');
  const proxy = await startDynamoProxy(dynamo.endpoint);
  const script: ProxyAction[] = [];
  proxy.rule = () => script.shift() ?? forward;
  recorder = Object.assign(proxy, { recorded: proxy.requests, script });
  ours = createDynamoClient({ region: 'eu-west-1', endpoint: recorder.url, credentials: () => credentials });
  sdk = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', endpoint: recorder.url, credentials, maxAttempts: 1 }), {
    marshallOptions: { removeUndefinedValues: true },
  });
});
after(async () => {
  sdk.destroy();
  await recorder.close();
  await dynamo.close();
});

/** The request each client sends for one operation: [the SDK's, ours]. */
async function bothSend(viaSdk: () => Promise<unknown>, viaOurs: () => Promise<unknown>): Promise<[Recorded, Recorded]> {
  recorder.recorded.length = 0;
  await viaSdk().catch(() => undefined);
  await viaOurs().catch(() => undefined);
  assert.equal(recorder.recorded.length, 2, 'one request each');
  return [recorder.recorded[0]!, recorder.recorded[1]!];
}

const key = (sk: string) => ({ pk: 'CHAIN#client#0', sk });

describe('the stores’ DynamoDB client and the AWS SDK’s', () => {
  // Each operation with one input, sent by both clients.
  const put = { TableName: '', Item: { ...key('1'), executionId: 'e1', n: 7 }, ConditionExpression: 'attribute_not_exists(pk)' };
  const get = { TableName: '', Key: key('1'), ConsistentRead: true };
  const query = {
    TableName: '',
    IndexName: 'byExecution',
    KeyConditionExpression: '#p = :p',
    ExpressionAttributeNames: { '#p': 'executionId' },
    ExpressionAttributeValues: { ':p': 'e1' },
    ScanIndexForward: false,
    Limit: 5,
    ExclusiveStartKey: { ...key('9'), executionId: 'e1' },
  };
  const remove = {
    TableName: '',
    Key: { pk: 'x' },
    ConditionExpression: '#o = :o',
    ExpressionAttributeNames: { '#o': 'owner' },
    ExpressionAttributeValues: { ':o': 'me' },
    ReturnValues: 'ALL_OLD' as const,
  };
  const audit = () => dynamo.tableName;
  const operations: [string, () => Promise<unknown>, () => Promise<unknown>][] = [
    ['PutItem with a condition', () => sdk.send(new PutCommand({ ...put, TableName: audit() })), () => ours.put({ ...put, TableName: audit() })],
    ['GetItem, strongly consistent', () => sdk.send(new GetCommand({ ...get, TableName: audit() })), () => ours.get({ ...get, TableName: audit() })],
    ['Query on an index, backwards, from a key', () => sdk.send(new QueryCommand({ ...query, TableName: audit() })), () => ours.query({ ...query, TableName: audit() })],
    [
      'DeleteItem with a condition, returning the old item',
      () => sdk.send(new DeleteCommand({ ...remove, TableName: dynamo.stateTableName })),
      () => ours.delete({ ...remove, TableName: dynamo.stateTableName }),
    ],
  ];

  for (const [name, viaSdk, viaOurs] of operations) {
    it(`${name}: the same target, body and signature scheme as the SDK`, async () => {
      const [theirs, mine] = await bothSend(viaSdk, viaOurs);
      assert.equal(mine.method, 'POST');
      assert.equal(mine.url, theirs.url);
      assert.equal(mine.headers['x-amz-target'], theirs.headers['x-amz-target']);
      assert.equal(mine.headers['content-type'], theirs.headers['content-type']);
      assert.deepEqual(JSON.parse(mine.body), JSON.parse(theirs.body));

      const sdkCheck = verifySigV4(theirs, credentials.secretAccessKey);
      assert.ok(sdkCheck.ok, 'the verifier accepts the SDK’s own request');
      const ourCheck = verifySigV4(mine, credentials.secretAccessKey);
      assert.ok(ourCheck.ok, 'and ours');
      assert.equal(ourCheck.scope.replace(/^\d{8}/, ''), sdkCheck.scope.replace(/^\d{8}/, ''));
      assert.ok(String(mine.headers.authorization).includes(`Credential=${credentials.accessKeyId}/`));
      assert.equal(mine.headers['x-amz-security-token'], credentials.sessionToken);
      // What the request means is signed, as the SDK signs it.
      for (const header of ['host', 'x-amz-date', 'x-amz-target', 'content-type', 'x-amz-security-token']) {
        assert.ok(ourCheck.signedHeaders.includes(header), `${header} is signed`);
        assert.ok(sdkCheck.signedHeaders.includes(header), `${header} is signed by the SDK too`);
      }
    });
  }

  const item = {
    pk: 'CHAIN#values#0',
    sk: '000000000001',
    executionId: 'e-values',
    integer: 42,
    negative: -3,
    fraction: 1.5,
    large: Number.MAX_SAFE_INTEGER,
    text: 'é€ 😀 "quoted" \\ \n',
    empty: '',
    yes: true,
    no: false,
    nothing: null,
    list: [1, 'a', { nested: [] }, [true]],
    map: { a: { b: 'c', n: 0 } },
  };

  it('what ours writes, the SDK reads back unchanged (undefined attributes left out)', async () => {
    await ours.put({ TableName: dynamo.tableName, Item: { ...item, gone: undefined } });
    const { Item } = await sdk.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk: item.pk, sk: item.sk }, ConsistentRead: true }));
    assert.deepEqual(Item, item);
  });

  it('what the SDK writes, ours reads back unchanged, by key and by query', async () => {
    const written = { ...item, sk: '000000000002' };
    await sdk.send(new PutCommand({ TableName: dynamo.tableName, Item: written }));
    assert.deepEqual((await ours.get({ TableName: dynamo.tableName, Key: { pk: item.pk, sk: written.sk }, ConsistentRead: true })).Item, written);
    const page = await ours.query({
      TableName: dynamo.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': item.pk },
      ConsistentRead: true,
      Limit: 1,
    });
    assert.deepEqual(page.Items, [item]);
    assert.deepEqual(page.LastEvaluatedKey, { pk: item.pk, sk: item.sk });
    const rest = await ours.query({ TableName: dynamo.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': item.pk }, ConsistentRead: true, ExclusiveStartKey: page.LastEvaluatedKey! });
    assert.deepEqual(rest.Items, [written]);
    assert.equal(rest.LastEvaluatedKey, undefined);
  });

  it('an absent item is no Item; a delete returns what was there', async () => {
    assert.deepEqual(await ours.get({ TableName: dynamo.stateTableName, Key: { pk: 'never' } }), {});
    await ours.put({ TableName: dynamo.stateTableName, Item: { pk: 'd', owner: 'me', value: '{}' } });
    assert.deepEqual(await ours.delete({ TableName: dynamo.stateTableName, Key: { pk: 'd' }, ReturnValues: 'ALL_OLD' }), { Attributes: { pk: 'd', owner: 'me', value: '{}' } });
    assert.deepEqual(await ours.delete({ TableName: dynamo.stateTableName, Key: { pk: 'd' }, ReturnValues: 'ALL_OLD' }), {});
  });
});

describe('DynamoDB’s refusals and faults', () => {
  it('a failed condition keeps DynamoDB’s name and is sent once', async () => {
    await ours.put({ TableName: dynamo.stateTableName, Item: { pk: 'taken', owner: 'a' } });
    recorder.recorded.length = 0;
    await assert.rejects(ours.put({ TableName: dynamo.stateTableName, Item: { pk: 'taken', owner: 'b' }, ConditionExpression: 'attribute_not_exists(pk)' }), (error: Error) => {
      assert.ok(error instanceof DynamoError);
      assert.equal(error.name, 'ConditionalCheckFailedException');
      assert.equal(error.message, 'The conditional request failed');
      assert.equal(error.status, 400);
      return true;
    });
    assert.equal(recorder.recorded.length, 1);
  });

  it('an item over 400 KB is a ValidationException, not retried', async () => {
    recorder.recorded.length = 0;
    await assert.rejects(ours.put({ TableName: dynamo.tableName, Item: { pk: 'big', sk: '1', executionId: 'e', record: 'x'.repeat(400 * 1024) } }), (error: Error) => {
      assert.equal(error.name, 'ValidationException');
      assert.match(error.message, /Item size has exceeded the maximum allowed size/);
      return true;
    });
    assert.equal(recorder.recorded.length, 1);
  });

  it('a missing table is a ResourceNotFoundException', async () => {
    await assert.rejects(ours.get({ TableName: 'no-such-table', Key: { pk: 'x' } }), { name: 'ResourceNotFoundException' });
  });

  it('throttling is tried again, once: the second attempt’s answer counts', async () => {
    recorder.recorded.length = 0;
    recorder.script.push({ kind: 'error', status: 400, type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' });
    await ours.put({ TableName: dynamo.stateTableName, Item: { pk: 'after-throttle', owner: 'a' } });
    assert.equal(recorder.recorded.length, 2);
    assert.deepEqual((await ours.get({ TableName: dynamo.stateTableName, Key: { pk: 'after-throttle' } })).Item, { pk: 'after-throttle', owner: 'a' });
  });

  it('a server error on every attempt: two attempts, then DynamoDB’s error', async () => {
    recorder.recorded.length = 0;
    const failure: ProxyAction = { kind: 'error', status: 500, type: 'com.amazon.coral.service#InternalFailure', message: 'boom' };
    recorder.script.push(failure, failure);
    await assert.rejects(ours.get({ TableName: dynamo.stateTableName, Key: { pk: 'x' } }), (error: Error) => {
      assert.ok(error instanceof DynamoError);
      assert.equal(error.name, 'InternalFailure');
      assert.equal(error.status, 500);
      assert.equal(error.retryable, true);
      return true;
    });
    assert.equal(recorder.recorded.length, 2);
  });

  it('an answer whose CRC32 does not match is not believed', async () => {
    recorder.recorded.length = 0;
    recorder.script.push({ kind: 'corruptChecksum' }, { kind: 'corruptChecksum' });
    await assert.rejects(ours.get({ TableName: dynamo.stateTableName, Key: { pk: 'taken' } }), { name: 'CorruptedResponse', message: /CRC32/ });
    assert.equal(recorder.recorded.length, 2);
    recorder.script.push({ kind: 'corruptChecksum' });
    assert.equal((await ours.get({ TableName: dynamo.stateTableName, Key: { pk: 'taken' } })).Item?.owner, 'a', 'a good second answer is');
  });

  it('no answer: each attempt is abandoned at the timeout', async () => {
    const quick = createDynamoClient({ region: 'eu-west-1', endpoint: recorder.url, credentials: () => credentials, requestTimeoutMs: 200 });
    recorder.recorded.length = 0;
    recorder.script.push({ kind: 'hang' }, { kind: 'hang' });
    await assert.rejects(quick.get({ TableName: dynamo.stateTableName, Key: { pk: 'x' } }), (error: Error) => {
      assert.ok(error instanceof AwsCallError);
      assert.equal(error.message, 'dynamodb did not answer within 200 ms');
      assert.equal(error.status, undefined);
      return true;
    });
    assert.equal(recorder.recorded.length, 2);
  });

  it('nothing listening: a connection error, named', async () => {
    const nowhere = createDynamoClient({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:9', credentials: () => credentials, maxAttempts: 1 });
    await assert.rejects(nowhere.get({ TableName: 't', Key: { pk: 'x' } }), { name: 'AwsCallError', message: /^dynamodb could not be reached: .*ECONNREFUSED/ });
  });

  it('with no endpoint given, AWS_ENDPOINT_URL is where calls go, as in the SDKs; else the region’s endpoint (FIPS, China)', async () => {
    const saved = { url: process.env.AWS_ENDPOINT_URL, ignore: process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, fips: process.env.AWS_USE_FIPS_ENDPOINT };
    process.env.AWS_ENDPOINT_URL = recorder.url;
    recorder.recorded.length = 0;
    try {
      await createDynamoClient({ region: 'eu-west-1', credentials: () => credentials }).get({ TableName: dynamo.stateTableName, Key: { pk: 'taken' } });
      assert.equal(recorder.recorded.length, 1);
      assert.equal(recorder.recorded[0]!.headers.host, new URL(recorder.url).host);
      process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = 'true';
      assert.equal(regionalEndpoint('dynamodb', 'eu-west-1'), 'https://dynamodb.eu-west-1.amazonaws.com');
      assert.equal(regionalEndpoint('states', 'cn-north-1'), 'https://states.cn-north-1.amazonaws.com.cn');
      process.env.AWS_USE_FIPS_ENDPOINT = 'true';
      assert.equal(regionalEndpoint('dynamodb', 'us-gov-west-1'), 'https://dynamodb-fips.us-gov-west-1.amazonaws.com');
    } finally {
      for (const [name, value] of [['AWS_ENDPOINT_URL', saved.url], ['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', saved.ignore], ['AWS_USE_FIPS_ENDPOINT', saved.fips]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('without credentials in the environment nothing is sent, and the error says which variables', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    delete process.env.AWS_ACCESS_KEY_ID;
    recorder.recorded.length = 0;
    try {
      // Two attempts allowed: a missing key is not worth the second.
      const fromEnvironment = createDynamoClient({ region: 'eu-west-1', endpoint: recorder.url, maxAttempts: 2 });
      await assert.rejects(fromEnvironment.get({ TableName: 't', Key: { pk: 'x' } }), {
        name: 'AwsCallError',
        message: 'no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set',
        retryable: false,
      });
      assert.equal(recorder.recorded.length, 0);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });
});
