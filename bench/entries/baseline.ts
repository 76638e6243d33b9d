/**
 * The baseline: what any Lambda built on the same three libraries costs, with
 * nothing of ours. Made with the same esbuild options as `manage`, configured
 * from the same variables, its work at load the same kind (a verifier, a
 * DynamoDB document client, a middy handler), and its request the minimum
 * that `manage` also does: verify the bearer token (JWKS fetched on first use,
 * over the same loopback fetch) and write one item.
 *
 * With BENCH_BASELINE_AUDIT=1 it makes the DynamoDB calls an audited run makes
 * on a new instance instead (read a chain's head, write the attempt, write the
 * outcome): the same libraries doing the same I/O, without our code.
 */
import middy from '@middy/core';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { JwtVerifier } from 'aws-jwt-verify';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';

const env = process.env;
const issuer = env.MANAGE_JWT_ISSUER!;
const verifier = JwtVerifier.create(
  { issuer, audience: env.MANAGE_JWT_AUDIENCE!, jwksUri: `${issuer}/.well-known/jwks.json` },
  { jwksCache: new SimpleJwksCache({ fetcher: { fetch: async (uri: string) => (await fetch(uri)).arrayBuffer() } }) },
);
const client = DynamoDBDocumentClient.from(
  new DynamoDBClient({ region: env.AWS_REGION ?? 'us-east-1', ...(env.AWS_ENDPOINT_URL_DYNAMODB ? { endpoint: env.AWS_ENDPOINT_URL_DYNAMODB } : {}) }),
);
const table = env.MANAGE_AUDIT_TABLE!;
const audited = env.BENCH_BASELINE_AUDIT === '1';

export const handler = middy<{ headers: Record<string, string> }>().handler(async (event) => {
  const token = (event.headers.authorization ?? '').replace(/^Bearer /, '');
  const claims = await verifier.verify(token);
  const id = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const put = (sk: string) =>
    client.send(new PutCommand({ TableName: table, Item: { pk: `BASELINE#${id}`, sk, sub: claims.sub, executionId: id }, ConditionExpression: 'attribute_not_exists(pk)' }));
  if (audited) {
    await client.send(
      new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `BASELINE#${id}` }, ScanIndexForward: false, Limit: 1, ConsistentRead: true }),
    );
  }
  await put('000000000001');
  if (audited) await put('000000000002');
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ok: true, id }) };
});
