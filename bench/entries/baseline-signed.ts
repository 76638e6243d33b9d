/**
 * The lean baseline: the floor of the libraries `manage` itself is built on
 * since it dropped the SDK's DynamoDB client — @middy/core and the three
 * @middy/http-* packages it chains, aws-jwt-verify, TypeBox's value checks,
 * @smithy/signature-v4 and @aws-sdk/util-dynamodb — with nothing of ours.
 * Configured from the same variables; its request the same minimum as
 * baseline.ts: verify the bearer token, check the body against a schema and
 * write one item, here with one SigV4-signed PutItem over node:http(s).
 */
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import httpRouterHandler from '@middy/http-router';
import { Type } from '@sinclair/typebox';
import { Check } from '@sinclair/typebox/value';
import { Errors } from '@sinclair/typebox/errors';
import { JwtVerifier } from 'aws-jwt-verify';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import { SignatureV4 } from '@smithy/signature-v4';
import { marshall } from '@aws-sdk/util-dynamodb';

const env = process.env;
const issuer = env.MANAGE_JWT_ISSUER!;
const verifier = JwtVerifier.create(
  { issuer, audience: env.MANAGE_JWT_AUDIENCE!, jwksUri: `${issuer}/.well-known/jwks.json` },
  { jwksCache: new SimpleJwksCache({ fetcher: { fetch: async (uri: string) => (await fetch(uri)).arrayBuffer() } }) },
);
const region = env.AWS_REGION ?? 'us-east-1';
const endpoint = new URL(env.AWS_ENDPOINT_URL_DYNAMODB ?? `https://dynamodb.${region}.amazonaws.com`);
class Sha256 {
  private readonly hash;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | Uint8Array) {
    this.hash.update(data);
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
}
const signer = new SignatureV4({
  service: 'dynamodb',
  region,
  sha256: Sha256 as never,
  credentials: async () => ({ accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'x', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'x' }),
});
const table = env.MANAGE_AUDIT_TABLE!;

async function putItem(item: Record<string, unknown>): Promise<void> {
  const body = JSON.stringify({ TableName: table, Item: marshall(item), ConditionExpression: 'attribute_not_exists(pk)' });
  const signed = await signer.sign({
    method: 'POST',
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
    path: '/',
    headers: { host: endpoint.host, 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem' },
    body,
  });
  const send = endpoint.protocol === 'https:' ? httpsRequest : httpRequest;
  await new Promise<void>((resolve, reject) => {
    const request = send(endpoint, { method: 'POST', headers: signed.headers }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`PutItem answered ${response.statusCode}`))));
    });
    request.on('error', reject);
    request.end(body);
  });
}

const schema = Type.Object({ message: Type.Optional(Type.String({ maxLength: 1000 })) });

const run = middy<{ headers: Record<string, string>; body?: unknown }>()
  .use(httpHeaderNormalizer())
  .use(httpJsonBodyParser({ disableContentTypeError: true }))
  .handler(async (event) => {
    const token = (event.headers.authorization ?? '').replace(/^Bearer /, '');
    const claims = await verifier.verify(token);
    const body = (event.body as { data?: unknown } | undefined)?.data ?? {};
    if (!Check(schema, body)) return { statusCode: 400, body: JSON.stringify([...Errors(schema, body)].map((error) => error.message)) };
    const id = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    await putItem({ pk: `BASELINE#${id}`, sk: '000000000001', sub: claims.sub, executionId: id });
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ok: true, id }) };
  });

export const handler = middy().handler(
  httpRouterHandler([
    { method: 'POST', path: '/__manage__/{command}', handler: run as never },
    { method: 'GET', path: '/__manage__', handler: (async () => ({ statusCode: 200, body: '{}' })) as never },
  ]) as never,
);
