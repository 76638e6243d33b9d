/**
 * The `manage` handler as deployed, built from an environment like Lambda's,
 * with a real dynalite behind it and a real token issuer in front of it.
 */
import type { Context } from 'aws-lambda';
import { commandLoaders } from '../../example/commands/index.js';
import type { CommandLoader } from '../../src/command.js';
import { loadConfig, type Environment } from '../../src/config.js';
import { createManageHandler, type ManageHandlerOptions } from '../../src/handler/create.js';
import type { AuditStore } from '../../src/stores/audit/store.js';
import { DynamoAuditStore } from '../../src/stores/audit/dynamodb.js';
import { createLogger } from '../../src/log.js';
import { startDynalite, type TestDynamo } from './dynalite.js';
import { startTestIssuer, type TestIssuer } from './issuer.js';

export interface HttpCall {
  method?: string;
  path: string;
  token?: string;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  /** Milliseconds the Lambda has left. */
  remainingMs?: number;
}

export interface TestResponse {
  status: number;
  headers: Record<string, string>;
  body: any;
  raw: string;
}

export interface TestStack {
  issuer: TestIssuer;
  dynamo: TestDynamo;
  /** The same table, read directly. */
  audit: AuditStore;
  logs: string[];
  env: Environment;
  handler: ReturnType<typeof createManageHandler>;
  http(call: HttpCall): Promise<TestResponse>;
  invoke(event: unknown, remainingMs?: number): Promise<any>;
  token(claims?: Record<string, unknown>): Promise<string>;
  /** Rebuilds the handler with other settings over the same issuer and table. */
  withEnv(env: Environment, options?: Partial<ManageHandlerOptions>): TestStack;
  close(): Promise<void>;
}

export interface StackOptions {
  env?: Environment;
  /** Extra commands, e.g. ones with observable side effects. */
  commands?: Record<string, CommandLoader>;
  handlerOptions?: Partial<ManageHandlerOptions>;
}

export async function startStack(options: StackOptions = {}): Promise<TestStack> {
  const [issuer, dynamo] = await Promise.all([startTestIssuer(), startDynalite()]);
  const baseEnv: Environment = {
    MANAGE_ALLOW_LIST: ['noop', 'echo', 'sleep', 'fail', ...Object.keys(options.commands ?? {})].join(','),
    MANAGE_JWT_ISSUER: issuer.issuer,
    MANAGE_JWT_AUDIENCE: issuer.audience,
    MANAGE_AUDIT_TABLE: dynamo.tableName,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_REGION: 'us-east-1',
  };
  const commands = { ...commandLoaders, ...options.commands };
  const audit = new DynamoAuditStore({ tableName: dynamo.tableName, region: 'us-east-1', endpoint: dynamo.endpoint, positionTable: dynamo.stateTableName });

  const build = (env: Environment, handlerOptions: Partial<ManageHandlerOptions>): TestStack => {
    const logs: string[] = [];
    const config = loadConfig(env, Object.keys(commands));
    const handler = createManageHandler(config, { commands, logger: createLogger((line) => logs.push(line)), ...handlerOptions });
    return {
      issuer,
      dynamo,
      audit,
      logs,
      env,
      handler,
      http: (call) => callHttp(handler, call),
      invoke: (event, remainingMs) => handler(event, lambdaContext(remainingMs)),
      token: (claims) => issuer.sign(claims),
      withEnv: (more, moreOptions = {}) => build({ ...env, ...more }, { ...handlerOptions, ...moreOptions }),
      close: async () => {
        await Promise.all([issuer.close(), dynamo.close()]);
      },
    };
  };
  return build({ ...baseEnv, ...options.env }, options.handlerOptions ?? {});
}

export function lambdaContext(remainingMs = 900_000): Context {
  const end = Date.now() + remainingMs;
  return {
    awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    getRemainingTimeInMillis: () => end - Date.now(),
  } as unknown as Context;
}

/** An API Gateway HTTP API (payload 2.0) event, as API Gateway sends it. */
export function httpEvent(call: HttpCall) {
  const headers: Record<string, string> = { 'user-agent': 'node-test', ...call.headers };
  if (call.token !== undefined) headers.authorization = `Bearer ${call.token}`;
  let body: string | undefined;
  if (typeof call.body === 'string') body = call.body;
  else if (call.body !== undefined) {
    body = JSON.stringify(call.body);
    headers['content-type'] ??= 'application/json';
  }
  const [rawPath, rawQueryString = ''] = call.path.split('?');
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    headers,
    ...(call.query ? { queryStringParameters: call.query } : {}),
    requestContext: {
      http: { method: call.method ?? 'POST', path: rawPath, sourceIp: '203.0.113.7', userAgent: headers['user-agent'], protocol: 'HTTP/1.1' },
      requestId: `api-${Math.random().toString(36).slice(2)}`,
      stage: '$default',
    },
    ...(body !== undefined ? { body, isBase64Encoded: false } : {}),
  };
}

export async function callHttp(handler: (event: any, context: Context) => Promise<any>, call: HttpCall): Promise<TestResponse> {
  const response = await handler(httpEvent(call), lambdaContext(call.remainingMs));
  return { status: response.statusCode, headers: response.headers, body: JSON.parse(response.body), raw: response.body };
}
