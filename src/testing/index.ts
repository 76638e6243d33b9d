/**
 * serverless-middle-management/testing: unit-test commands and a whole `manage`
 * handler in process — in-memory audit and state stores, a token issuer made
 * at run time (an RS256 key made in this process, verified by the real token verifier), the
 * same pipeline, validation, redaction and error mapping as deployed.
 * Needs no DynamoDB, no network and no dependency beyond the package's own.
 *
 * ```ts
 * import { runCommand, createTestHandler } from 'serverless-middle-management/testing';
 * import echo from '../commands/echo.js';
 *
 * const run = await runCommand(echo, { message: 'hi' });
 * assert.deepEqual(run.result, { message: 'hi' });
 *
 * const service = await createTestHandler({ commands: { echo } });
 * const response = await service.post('echo', { data: { message: 'hi' } });
 * assert.equal(response.status, 200);
 * ```
 *
 * @packageDocumentation
 */
import { createHash, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Fetcher } from 'aws-jwt-verify/https';
import { toLoaders, type CommandEntry } from '../command-entry.js';
import type { CommandDefinition } from '../command.js';
import { loadConfig, type Environment } from '../config.js';
import { createManageHandler } from '../handler/create.js';
import type { WorkerEvent } from '../handler/worker.js';
import type { LambdaContext, ManageHandler } from '../index.js';
import { createLogger } from '../log.js';
import type { ExecutionResponse } from '../pipeline/types.js';
import { MemoryAuditStore } from '../stores/audit/memory.js';
import type { AuditStore } from '../stores/audit/store.js';
import { MemoryStateStore, type StateStore } from '../stores/state/store.js';

export { MemoryAuditStore } from '../stores/audit/memory.js';
export { MemoryStateStore } from '../stores/state/store.js';

/** The issuer and audience of test tokens: a name that can never resolve, so no real issuer is ever trusted by mistake. */
export const TEST_ISSUER = 'https://issuer.middle-management.invalid';
/** The audience test tokens carry and the test handler requires. */
export const TEST_AUDIENCE = 'middle-management-test';

/** A successful (or planned) run, as the HTTP API's 200 body and a direct invocation return it. */
export interface ExecutionResult<Result = unknown> extends Omit<ExecutionResponse, 'result'> {
  /** The command's return value (its `plan` on a dry run), as JSON would carry it; `output` holds the lines it logged, secrets scrubbed. */
  result: Result;
}

/** Claims of a test token; anything else given is added as a claim. */
export interface TestTokenClaims {
  /** Default `test-user`. */
  sub?: string;
  username?: string;
  /** The caller's groups (`groups` claim). */
  groups?: string[];
  /** Space-separated scopes (`scope` claim). */
  scope?: string;
  /** Seconds until the token expires; default 300. */
  expiresIn?: number;
  [claim: string]: unknown;
}

/** One HTTP request to the test handler, as API Gateway (HTTP API, payload 2.0) would deliver it. */
export interface TestRequest {
  /** Default `POST` when a body is given, else `GET`. */
  method?: string;
  /** E.g. `/__manage__/echo` or `/__manage__/executions/…`. */
  path: string;
  /** Sent as JSON unless a string. */
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  /**
   * The bearer token: a string is sent as is, claims make a signed token, `false`
   * sends none. Default: a token for `test-user` with no groups.
   */
  token?: string | TestTokenClaims | false;
}

/** A response of the test handler, its body parsed. */
export interface TestResponse<Body = any> {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: Body;
}

/** Options of a `POST /__manage__/{command}` through {@link TestHandler.post}. */
export interface TestPostOptions {
  /** The command's arguments (`data`). */
  data?: Record<string, unknown>;
  dryRun?: boolean;
  /** `Idempotency-Key` header. */
  idempotencyKey?: string;
  /** Send `Prefer: respond-async`: answered 202, run by an in-process worker. */
  async?: boolean;
  /** As in {@link TestRequest.token}. */
  token?: string | TestTokenClaims | false;
}

/** A `manage` handler running in process, and what a test needs around it. */
export interface TestHandler {
  /** The handler itself, as Lambda would call it. */
  handler: ManageHandler;
  /** The audit trail it wrote (in memory). */
  audit: AuditStore;
  /** Its idempotency keys, leases and pending approvals (in memory). */
  state: StateStore;
  /** Log lines the handler wrote (JSON strings), instead of stdout. */
  logs: string[];
  /** A token this handler accepts. */
  token(claims?: TestTokenClaims): string;
  /** Sends one HTTP request. */
  request<Body = any>(request: TestRequest): Promise<TestResponse<Body>>;
  /** `POST /__manage__/{command}`. */
  post<Body = any>(command: string, options?: TestPostOptions): Promise<TestResponse<Body>>;
  /**
   * A direct invocation (`{ command, data, dryRun?, idempotencyKey?, actor? }`), as Step
   * Functions makes it; rejects with an error whose `name` is the error code.
   */
  invoke<Result = unknown>(event: Record<string, unknown>): Promise<ExecutionResult<Result>>;
  /** Resolves once every worker run started by `Prefer: respond-async` has finished. */
  settled(): Promise<void>;
}

/** Options of {@link createTestHandler}. */
export interface TestHandlerOptions {
  /** Command name → command, as for `createManageHandler`. */
  commands: Readonly<Record<string, CommandEntry>>;
  /**
   * `MANAGE_*` settings (e.g. `MANAGE_COMMAND_GROUPS`, `MANAGE_APPROVAL`). The
   * allowlist defaults to every command given; the issuer and tables are set
   * for the test. `process.env` is never read.
   */
  env?: Environment;
  /** Milliseconds the simulated Lambda has left on each call; default 60000. */
  remainingTimeMs?: number;
}

/**
 * A whole `manage` handler in process: the commands given, in-memory stores,
 * and a token issuer of its own ({@link TestHandler.token}).
 */
export async function createTestHandler(options: TestHandlerOptions): Promise<TestHandler> {
  const issuer = await createTestIssuer();
  const commands = toLoaders(options.commands);
  const env: Environment = {
    MANAGE_ALLOW_LIST: Object.keys(commands).join(','),
    MANAGE_AUDIT_TABLE: 'middle-management-test-audit',
    AWS_REGION: 'us-east-1',
    ...options.env,
    MANAGE_JWT_ISSUER: TEST_ISSUER,
    MANAGE_JWT_AUDIENCE: TEST_AUDIENCE,
    MANAGE_JWT_JWKS_URI: `${TEST_ISSUER}/jwks.json`,
  };
  const config = loadConfig(env, Object.keys(commands));
  const audit = new MemoryAuditStore(config.auditHmacKey ? { hashKey: config.auditHmacKey } : {});
  const state = new MemoryStateStore();
  const logs: string[] = [];
  const running = new Set<Promise<unknown>>();
  const remainingMs = options.remainingTimeMs ?? 60_000;
  const context = (): LambdaContext => {
    const deadline = Date.now() + remainingMs;
    return { awsRequestId: `test-${Math.random().toString(36).slice(2)}`, functionName: 'manage', getRemainingTimeInMillis: () => deadline - Date.now() };
  };
  let handler: ManageHandler;
  const launcher = {
    // Lambda queues an `Event` invocation and answers at once: so does this, the run continues in process.
    async launch(event: WorkerEvent) {
      const run = Promise.resolve()
        .then(() => handler(event, context()))
        .catch(() => undefined)
        .finally(() => running.delete(run));
      running.add(run);
    },
  };
  const reporter = { succeed: async () => undefined, fail: async () => undefined };
  handler = createManageHandler(config, {
    commands,
    audit,
    state,
    launcher,
    reporter,
    jwksFetcher: issuer.fetcher,
    logger: createLogger((line) => logs.push(line)),
  }) as unknown as ManageHandler;

  const bearer = (token: TestRequest['token']): string | undefined =>
    token === false ? undefined : typeof token === 'string' ? token : issuer.sign(token ?? {});

  const request = async <Body = any>(call: TestRequest): Promise<TestResponse<Body>> => {
    const headers: Record<string, string> = { ...call.headers };
    const token = bearer(call.token);
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    let body: string | undefined;
    if (call.body !== undefined) {
      body = typeof call.body === 'string' ? call.body : JSON.stringify(call.body);
      headers['content-type'] ??= 'application/json';
    }
    const method = (call.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
    const [rawPath, rawQuery = ''] = call.path.split('?', 2) as [string, string?];
    const query = { ...Object.fromEntries(new URLSearchParams(rawQuery)), ...call.query };
    const event = {
      version: '2.0',
      routeKey: '$default',
      rawPath,
      rawQueryString: new URLSearchParams(query).toString(),
      headers,
      ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
      requestContext: {
        http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: headers['user-agent'] ?? 'middle-management-testing' },
        requestId: `test-${Math.random().toString(36).slice(2)}`,
        routeKey: '$default',
        stage: '$default',
        timeEpoch: Date.now(),
      },
      isBase64Encoded: false,
      ...(body !== undefined ? { body } : {}),
    };
    const response = (await handler(event, context())) as { statusCode: number; headers?: Record<string, string>; body?: string };
    const responseHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers ?? {})) responseHeaders[name.toLowerCase()] = String(value);
    return { status: response.statusCode, headers: responseHeaders, body: response.body ? JSON.parse(response.body) : undefined };
  };

  return {
    handler,
    audit,
    state,
    logs,
    token: (claims) => issuer.sign(claims ?? {}),
    request,
    post: (command, post = {}) =>
      request({
        method: 'POST',
        path: `/__manage__/${encodeURIComponent(command)}`,
        body: { ...(post.data !== undefined ? { data: post.data } : {}), ...(post.dryRun !== undefined ? { dryRun: post.dryRun } : {}) },
        headers: {
          ...(post.idempotencyKey !== undefined ? { 'idempotency-key': post.idempotencyKey } : {}),
          ...(post.async ? { prefer: 'respond-async' } : {}),
        },
        ...(post.token !== undefined ? { token: post.token } : {}),
      }),
    invoke: async (event) => (await handler(event, context())) as ExecutionResult<any>,
    settled: async () => {
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Run the command's `plan` instead (`dryRun: true`); status `planned`. */
  dryRun?: boolean;
  /** Recorded as the invoker (a direct invocation's `actor`); default `test`. */
  actor?: string;
  /** The name the command runs under; default `command`. */
  name?: string;
  /** Milliseconds the simulated Lambda has left; the command's own limit may be lower. Default 60000. */
  remainingTimeMs?: number;
}

/** The result type a command's `run` resolves to. */
export type CommandResult<C> = C extends CommandDefinition<any, infer Result> ? Awaited<Result> : unknown;

/**
 * Runs one command through the whole pipeline as a direct invocation would:
 * arguments validated against its schema (defaults applied), a time limit, the
 * audit written (in memory), secrets redacted.
 *
 * @returns the execution, its `result` typed from the command
 * @throws an error whose `name` is the error code: `InvalidArguments`, `CommandFailed`
 *   (the command threw; the message is its message), `CommandTimedOut`, …
 */
export async function runCommand<C extends CommandDefinition<any, any>>(
  command: C,
  data: Record<string, unknown> = {},
  options: RunCommandOptions = {},
): Promise<ExecutionResult<CommandResult<C>>> {
  const name = options.name ?? 'command';
  const service = await createTestHandler({
    commands: { [name]: command },
    ...(options.remainingTimeMs !== undefined ? { remainingTimeMs: options.remainingTimeMs } : {}),
  });
  return service.invoke<CommandResult<C>>({
    command: name,
    data,
    actor: options.actor ?? 'test',
    ...(options.dryRun !== undefined ? { dryRun: options.dryRun } : {}),
  });
}

// ---------------------------------------------------------------- the test issuer

interface TestIssuer {
  fetcher: Fetcher;
  sign(claims: TestTokenClaims): string;
}

const generateRsaKey = promisify(generateKeyPair);
/** Made on first use in this process (never stored, never shipped), then shared by every test handler. */
let testKey: Promise<{ privateKey: KeyObject; publicKey: KeyObject }> | undefined;

/** An RS256 key made at run time; its JWKS is served by a fetcher, never over a network. */
async function createTestIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = await (testKey ??= generateRsaKey('rsa', { modulusLength: 2048 }));
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(JSON.stringify(jwk)).digest('base64url').slice(0, 16);
  const jwks = new TextEncoder().encode(JSON.stringify({ keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] }));
  return {
    fetcher: {
      async fetch(uri: string) {
        if (uri !== `${TEST_ISSUER}/jwks.json`) throw new Error(`the test issuer serves no ${uri}`);
        return jwks.slice().buffer;
      },
    },
    sign: (claims) => signJwt(privateKey, kid, claims),
  };
}

function signJwt(privateKey: KeyObject, kid: string, claims: TestTokenClaims): string {
  const now = Math.floor(Date.now() / 1000);
  const { expiresIn = 300, ...rest } = claims;
  const payload = { iss: TEST_ISSUER, aud: TEST_AUDIENCE, sub: 'test-user', iat: now, exp: now + expiresIn, ...rest };
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ alg: 'RS256', typ: 'JWT', kid })}.${encode(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}
