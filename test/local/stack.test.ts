/**
 * The local stack as users run it (CONTRACT §6, §8):
 *
 * - its tables, on dynalite and on an endpoint with TTL (issue 11, item 14);
 * - `npm start` (the example service through `middle-management dev`) on free
 *   ports: the API, the Lambda invoke endpoint, `npm run token`, a clean stop;
 * - `npm start` with a bad configuration: non-zero, naming the variable;
 * - `middle-management dev` in a fresh service folder (the bundled CLI, a
 *   pristine serverless-offline, serverless-esbuild with its defaults, an
 *   external DynamoDB endpoint): the service's own command with a `dev token`
 *   token, the contract's errorType on direct invocations, state and build
 *   output in the service's `.middle-management/` only.
 *
 * Run alone with `node --import tsx --test test/local/stack.test.ts`; it needs no
 * network beyond 127.0.0.1 but boots serverless-offline three times.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { freePort } from '../../local/processes.js';
import { findServiceTools, serviceFacts } from '../../local/service.js';
import { ensureTables } from '../../local/tables.js';
import { auditTableDefinition, stateTableDefinition } from '../../src/stores/audit/table.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE_FUNCTION = 'middle-management-dev-manage';
const BOOT_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 15_000;
const JWT = /\beyJ[\w-]+\.[\w-]+\.[\w-]+\b/;
const run = promisify(execFile);

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** This machine's environment without anything that would change what the stack does. */
function stackEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('MANAGE_') || key.startsWith('AWS_') || key.startsWith('npm_') || key === 'DEV_ISSUER_FILE') continue;
    env[key] = value;
  }
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
}

async function freePorts(): Promise<Record<'PORT' | 'LAMBDA_PORT' | 'DYNAMODB_PORT' | 'ISSUER_PORT', string>> {
  return {
    PORT: String(await freePort()),
    LAMBDA_PORT: String(await freePort()),
    DYNAMODB_PORT: String(await freePort()),
    ISSUER_PORT: String(await freePort()),
  };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((done) => setTimeout(done, 100));
  }
  return true;
}

/** A stack command in its own process group (as a terminal runs it), its output collected. */
class Stack {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined;

  constructor(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.on('exit', (code, signal) => (this.exitCode = code ?? (signal ? -1 : null)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The process group the stack gives serverless-offline. */
  get offlineGroup(): number | undefined {
    const match = /serverless-offline is process group (\d+)/.exec(this.stderr);
    return match ? Number(match[1]) : undefined;
  }

  get output(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  get token(): string {
    return JWT.exec(this.stdout)![0];
  }

  async ready(): Promise<void> {
    const ok = await waitUntil(() => this.stdout.includes('local stack is ready') || this.exitCode !== undefined, BOOT_TIMEOUT_MS);
    assert.ok(ok && this.exitCode === undefined, `the stack did not become ready\n${this.output}`);
  }

  async exited(timeoutMs: number): Promise<number | null | undefined> {
    await waitUntil(() => this.exitCode !== undefined, timeoutMs);
    return this.exitCode;
  }

  /** Ctrl-C: SIGINT to the whole group; then nothing of it may be left. */
  async interrupt(): Promise<void> {
    const offlineGroup = this.offlineGroup;
    assert.ok(offlineGroup, `the stack did not report serverless-offline's process group\n${this.output}`);
    process.kill(-this.pid, 'SIGINT');
    const gone = await waitUntil(() => !groupAlive(this.pid) && !groupAlive(offlineGroup), STOP_TIMEOUT_MS);
    assert.ok(gone, `processes left after SIGINT\n${this.output}`);
    assert.throws(() => process.kill(-this.pid, 0), { code: 'ESRCH' });
    assert.throws(() => process.kill(-offlineGroup, 0), { code: 'ESRCH' });
  }

  /** Last resort, so that a failed test leaves nothing running. */
  kill(): void {
    for (const pgid of [this.pid, this.offlineGroup]) {
      if (pgid === undefined) continue;
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** The `curl` lines the stack printed, as a user would paste them. */
function curlLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('curl '));
}

async function hasCurl(): Promise<boolean> {
  return run('curl', ['--version']).then(
    () => true,
    () => false,
  );
}

/** Runs one printed line through the shell; its stdout parsed as JSON. */
async function paste(line: string): Promise<any> {
  const { stdout } = await run('sh', ['-c', line], { timeout: 60_000 });
  return JSON.parse(stdout);
}

async function invoke(url: string, event: unknown): Promise<{ status: number; functionError: string | null; payload: any }> {
  const response = await fetch(url, { method: 'POST', body: JSON.stringify(event) });
  return { status: response.status, functionError: response.headers.get('x-amz-function-error'), payload: await response.json() };
}

async function post(url: string, token: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: JSON.stringify(body),
  });
}

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

// ------------------------------------------------------------------ DynamoDB

interface Dynamo {
  endpoint: string;
  client: DynamoDBClient;
  close(): Promise<void>;
}

async function startDynalite(): Promise<Dynamo> {
  const server: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return {
    endpoint,
    client,
    close: async () => {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

interface TtlEndpoint extends Dynamo {
  /** Every operation the endpoint received (`X-Amz-Target` without its API prefix). */
  operations: string[];
  /** The UpdateTimeToLive requests, as sent. */
  ttlUpdates: any[];
}

/**
 * DynamoDB with TTL, as an external endpoint (DynamoDB Local, LocalStack, AWS) has it:
 * dynalite behind a recording proxy that answers DescribeTimeToLive/UpdateTimeToLive itself.
 */
async function startTtlEndpoint(): Promise<TtlEndpoint> {
  const backend = await startDynalite();
  const operations: string[] = [];
  const ttlUpdates: any[] = [];
  const enabled = new Map<string, string>();
  const read = async (request: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const server = createServer(async (request, response) => {
    const body = await read(request);
    const operation = String(request.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
    operations.push(operation);
    const answer = (payload: unknown) => {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'ttl-proxy' });
      response.end(JSON.stringify(payload));
    };
    if (operation === 'UpdateTimeToLive') {
      const input = JSON.parse(body.toString('utf8'));
      ttlUpdates.push(input);
      if (input.TimeToLiveSpecification?.Enabled) enabled.set(input.TableName, input.TimeToLiveSpecification.AttributeName);
      return answer({ TimeToLiveSpecification: input.TimeToLiveSpecification });
    }
    if (operation === 'DescribeTimeToLive') {
      const { TableName } = JSON.parse(body.toString('utf8'));
      const attribute = enabled.get(TableName);
      if (attribute) return answer({ TimeToLiveDescription: { TimeToLiveStatus: 'ENABLED', AttributeName: attribute } });
    }
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'x-amz-target', 'authorization', 'x-amz-date']) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const forwarded = await fetch(`${backend.endpoint}${request.url ?? '/'}`, { method: request.method ?? 'POST', headers, body });
    const out: Record<string, string> = {};
    for (const name of ['content-type', 'x-amzn-requestid', 'x-amz-crc32']) {
      const value = forwarded.headers.get(name);
      if (value !== null) out[name] = value;
    }
    response.writeHead(forwarded.status, out);
    response.end(Buffer.from(await forwarded.arrayBuffer()));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    client: backend.client,
    operations,
    ttlUpdates,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      await backend.close();
    },
  };
}

async function keyLayout(client: DynamoDBClient, TableName: string) {
  const { Table } = await client.send(new DescribeTableCommand({ TableName }));
  return {
    keys: Table?.KeySchema,
    indexes: (Table?.GlobalSecondaryIndexes ?? []).map((index) => ({ name: index.IndexName, keys: index.KeySchema })).sort((a, b) => a.name!.localeCompare(b.name!)),
  };
}

function definedLayout(definition: ReturnType<typeof auditTableDefinition>) {
  return {
    keys: definition.KeySchema,
    indexes: (definition.GlobalSecondaryIndexes ?? []).map((index) => ({ name: index.IndexName, keys: index.KeySchema })).sort((a, b) => a.name!.localeCompare(b.name!)),
  };
}

describe('local stack tables', () => {
  const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
  const tables = { audit: 'svc-dev-mm-audit', state: 'svc-dev-mm-state' };

  it('creates both tables with the layouts of src/stores/audit/table.ts on dynalite, which has no TTL', async () => {
    const dynamo = await startDynalite();
    try {
      const first = await ensureTables({ endpoint: dynamo.endpoint, region: 'us-east-1', env, tables });
      assert.deepEqual(first, [
        { name: tables.audit, created: true },
        { name: tables.state, created: true, ttl: 'unsupported' },
      ]);
      assert.deepEqual(await keyLayout(dynamo.client, tables.audit), definedLayout(auditTableDefinition(tables.audit)));
      assert.deepEqual(await keyLayout(dynamo.client, tables.state), definedLayout(stateTableDefinition(tables.state)));
      const again = await ensureTables({ endpoint: dynamo.endpoint, region: 'us-east-1', env, tables });
      assert.deepEqual(again.map((table) => table.created), [false, false]);
    } finally {
      await dynamo.close();
    }
  });

  it('switches TTL on (attribute ttl) for the state table on an endpoint that has TTL', async () => {
    const dynamo = await startTtlEndpoint();
    try {
      const first = await ensureTables({ endpoint: dynamo.endpoint, region: 'us-east-1', env, tables });
      assert.deepEqual(first[1], { name: tables.state, created: true, ttl: 'enabled' });
      assert.deepEqual(dynamo.ttlUpdates, [{ TableName: tables.state, TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }]);
      // Once on, it is left alone.
      const again = await ensureTables({ endpoint: dynamo.endpoint, region: 'us-east-1', env, tables });
      assert.deepEqual(again[1], { name: tables.state, created: false, ttl: 'enabled' });
      assert.equal(dynamo.ttlUpdates.length, 1);
    } finally {
      await dynamo.close();
    }
  });

  it('switches TTL on for a state table that exists without it (made by an older stack)', async () => {
    const dynamo = await startTtlEndpoint();
    try {
      await dynamo.client.send(new CreateTableCommand(stateTableDefinition(tables.state)));
      const reports = await ensureTables({ endpoint: dynamo.endpoint, region: 'us-east-1', env, tables });
      assert.deepEqual(reports, [
        { name: tables.audit, created: true },
        { name: tables.state, created: false, ttl: 'enabled' },
      ]);
      assert.deepEqual(dynamo.ttlUpdates, [{ TableName: tables.state, TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }]);
    } finally {
      await dynamo.close();
    }
  });
});

describe('middle-management dev refuses a folder it cannot run', () => {
  it('names what is missing: the service, serverless, serverless-offline (with the install line)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mm-folder-'));
    try {
      assert.throws(() => findServiceTools(dir), /no serverless\.yml .* run `npx middle-management dev` in your Serverless service's folder/);
      writeFileSync(join(dir, 'serverless.yml'), 'service: x\n');
      assert.throws(() => findServiceTools(dir), /the Serverless Framework is not installed in .*\n  npm install --save-dev serverless@npm:osls serverless-offline/);
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(join(root, 'node_modules', 'serverless'), join(dir, 'node_modules', 'serverless'), 'dir');
      assert.throws(() => findServiceTools(dir), /serverless-offline is not installed in .*\n  npm install --save-dev serverless-offline/);
      symlinkSync(join(root, 'node_modules', 'serverless-offline'), join(dir, 'node_modules', 'serverless-offline'), 'dir');
      assert.match(findServiceTools(dir).serverlessBin, /\/serverless\/bin\/serverless\.js$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads the function and table names from the resolved configuration, and wants serverless-offline loaded', () => {
    const config = {
      service: 'shop',
      plugins: ['serverless-middle-management/plugin', 'serverless-offline'],
      custom: { middleManagement: { functionName: 'ops', allowList: ['reindex', 'purge'], auditTableName: 'shop-audit' } },
    };
    const facts = serviceFacts(config, { stage: 'dev', env: {} });
    assert.equal(facts.functionName, 'shop-dev-ops');
    assert.deepEqual(facts.tables, { audit: 'shop-audit', state: 'shop-dev-mm-state' });
    assert.deepEqual(facts.allowList, ['reindex', 'purge']);
    assert.equal(facts.usesOffline, true);
    // The environment wins, as it does for the function under offline.
    assert.deepEqual(serviceFacts(config, { stage: 'dev', env: { MANAGE_STATE_TABLE: 'mine', MANAGE_ALLOW_LIST: 'a,b' } }).tables.state, 'mine');
    assert.throws(() => serviceFacts({ service: 'shop', plugins: ['serverless-offline'] }, { stage: 'dev', env: {} }), /no `manage` function: add the plugin/);
  });
});

// ------------------------------------------------------------------ npm start (the example)

describe('npm start', { timeout: BOOT_TIMEOUT_MS + 120_000 }, () => {
  let stack: Stack;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let api: string;
  let invokeUrl: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mm-stack-'));
    // DEV_ISSUER_FILE: leave the developer's example/.middle-management/dev-issuer.json alone.
    env = stackEnv({ ...(await freePorts()), DEV_ISSUER_FILE: join(dir, 'dev-issuer.json') });
    api = `http://127.0.0.1:${env.PORT}`;
    invokeUrl = `http://127.0.0.1:${env.LAMBDA_PORT}/2015-03-31/functions/${EXAMPLE_FUNCTION}/invocations`;
    stack = new Stack('npm', ['start'], root, env);
    await stack.ready();
  });

  after(async () => {
    stack?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints the API URL, the invoke URL, a token and curl lines', () => {
    assert.match(stack.stdout, new RegExp(`http://localhost:${env.PORT}/__manage__`));
    assert.match(stack.stdout, new RegExp(`http://localhost:${env.LAMBDA_PORT}/2015-03-31/functions/${EXAMPLE_FUNCTION}/invocations`));
    assert.match(stack.stdout, JWT);
    assert.match(stack.stdout, /curl -sS -X POST http:\/\/localhost:\d+\/__manage__\/echo -H "Authorization: Bearer eyJ/);
    assert.match(stack.stdout, /npm run token --/);
    assert.match(stack.stdout, new RegExp(`^  Console +http://localhost:${env.PORT}/__manage__/console `, 'm'));
    assert.equal(claims(stack.token).aud, 'urn:middle-management:local');
  });

  it('serves the web console, set up to sign in with the dev issuer', async () => {
    const page = await fetch(`${api}/__manage__/console`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /data-client-id="mm-console"/);
    assert.match(html, new RegExp(`data-issuer="http://127\\.0\\.0\\.1:${env.ISSUER_PORT}"`));
    assert.match(html, /data-resource="urn:middle-management:local"/);
    // The dev issuer sends the console back to either loopback name.
    const discovery = await (await fetch(`http://127.0.0.1:${env.ISSUER_PORT}/.well-known/openid-configuration`)).json();
    for (const host of ['localhost', '127.0.0.1']) {
      const authorize = new URL(discovery.authorization_endpoint);
      const query = { client_id: 'mm-console', response_type: 'code', scope: 'openid', redirect_uri: `http://${host}:${env.PORT}/__manage__/console`, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's' };
      for (const [name, value] of Object.entries(query)) authorize.searchParams.set(name, value);
      const answer = await fetch(authorize, { redirect: 'manual' });
      assert.equal(answer.status, 303, `${host}: ${await answer.text()}`);
      assert.match(answer.headers.get('location') ?? '', /\/interaction\//, host);
    }
  });

  it('prints curl lines that work as pasted', async (t) => {
    if (!(await hasCurl())) return t.skip('no curl on this machine');
    const [list, echo, direct] = curlLines(stack.stdout);
    assert.ok(list && echo && direct, stack.stdout);
    assert.ok((await paste(list)).commands.some((command: { name: string }) => command.name === 'echo'));
    assert.deepEqual((await paste(echo)).result, { message: 'hello' });
    assert.equal((await paste(direct)).status, 'succeeded');
  });

  it('runs echo over HTTP with the printed token', async () => {
    const response = await post(`${api}/__manage__/echo`, stack.token, { data: { message: 'hi' } });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.command, 'echo');
    assert.equal(body.status, 'succeeded');
    assert.deepEqual(body.result, { message: 'hi' });
    assert.ok(Array.isArray(body.output));
    assert.equal(typeof body.executionId, 'string');
  });

  it('accepts a token from `npm run token`, which prints exactly one line', async () => {
    const { stdout } = await run('npm', ['run', '-s', 'token', '--', '--sub', 'tester', '--groups', 'ops,dev'], { cwd: root, env });
    const lines = stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected exactly one line, got:\n${stdout}`);
    assert.match(lines[0]!, new RegExp(`^${JWT.source}$`));
    assert.equal(claims(lines[0]!).sub, 'tester');
    assert.deepEqual(claims(lines[0]!).groups, ['ops', 'dev']);

    const response = await post(`${api}/__manage__/echo`, lines[0], { data: { message: 'from the token script' } });
    assert.equal(response.status, 200, await response.clone().text());
    assert.deepEqual((await response.json()).result, { message: 'from the token script' });
  });

  it('runs a command asynchronously through a worker invocation on the Lambda endpoint', async () => {
    const accepted = await post(`${api}/__manage__/sleep`, stack.token, { data: { ms: 300 } }, { prefer: 'respond-async' });
    const body = await accepted.json();
    assert.equal(accepted.status, 202, JSON.stringify(body));
    assert.equal(accepted.headers.get('location'), `/__manage__/executions/${body.executionId}`);
    let status = body.status;
    for (let i = 0; i < 150 && status !== 'succeeded' && status !== 'failed'; i++) {
      await new Promise((done) => setTimeout(done, 100));
      const shown = await fetch(`${api}${accepted.headers.get('location')}`, { headers: { authorization: `Bearer ${stack.token}` } });
      status = (await shown.json()).status;
    }
    assert.equal(status, 'succeeded');
  });

  it('answers 401 without a token', async () => {
    const response = await post(`${api}/__manage__/echo`, undefined, { data: { message: 'hi' } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await response.json()).error.code, 'Unauthorized');
  });

  it('runs a direct invocation on the Lambda endpoint', async () => {
    const { status, functionError, payload } = await invoke(invokeUrl, { command: 'echo', data: { message: 'hi' } });
    assert.equal(status, 200);
    assert.equal(functionError, null, JSON.stringify(payload));
    assert.equal(payload.status, 'succeeded');
    assert.deepEqual(payload.result, { message: 'hi' });
  });

  it('reports the contract error name as errorType on direct invocations', async () => {
    const notAllowed = await invoke(invokeUrl, { command: 'nope' });
    assert.equal(notAllowed.functionError, 'Unhandled');
    assert.equal(notAllowed.payload.errorType, 'CommandNotAllowed');

    const invalid = await invoke(invokeUrl, { command: 'echo', data: { message: 42 } });
    assert.equal(invalid.payload.errorType, 'InvalidArguments');
  });

  it('stops every process and server it started on Ctrl-C', async () => {
    await stack.interrupt();
    await assert.rejects(fetch(`${api}/__manage__`), 'the API still answers');
    await assert.rejects(fetch(`http://127.0.0.1:${env.LAMBDA_PORT}/`), 'the Lambda endpoint still answers');
    await assert.rejects(fetch(`http://127.0.0.1:${env.DYNAMODB_PORT}/`), 'dynalite still answers');
    await assert.rejects(fetch(`http://127.0.0.1:${env.ISSUER_PORT}/.well-known/jwks.json`), 'the issuer still answers');
  });
});

describe('npm start with a bad configuration', { timeout: BOOT_TIMEOUT_MS }, () => {
  it('exits non-zero, names the variable and leaves nothing running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mm-stack-'));
    const env = stackEnv({ ...(await freePorts()), MANAGE_ALLOW_LIST: 'bogus', DEV_ISSUER_FILE: join(dir, 'dev-issuer.json') });
    const stack = new Stack('npm', ['start'], root, env);
    try {
      const code = await stack.exited(BOOT_TIMEOUT_MS - 30_000);
      assert.notEqual(code, undefined, `npm start is still running\n${stack.output}`);
      assert.notEqual(code, 0);
      assert.match(stack.stderr, /Configuration error: MANAGE_ALLOW_LIST: /);
      assert.doesNotMatch(stack.stdout, /local stack is ready/);
      const offlineGroup = stack.offlineGroup;
      if (offlineGroup !== undefined) assert.ok(await waitUntil(() => !groupAlive(offlineGroup), STOP_TIMEOUT_MS), 'serverless-offline was left running');
      await assert.rejects(fetch(`http://127.0.0.1:${env.PORT}/__manage__`), 'the API still answers');
      await assert.rejects(fetch(`http://127.0.0.1:${env.DYNAMODB_PORT}/`), 'dynalite still answers');
    } finally {
      stack.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a port that is not a port, naming the variable, before starting anything', async () => {
    const env = stackEnv({ ...(await freePorts()), LAMBDA_PORT: 'seventy' });
    const stack = new Stack('npm', ['start'], root, env);
    try {
      const code = await stack.exited(60_000);
      assert.equal(code, 1, stack.output);
      assert.match(stack.stderr, /Configuration error: LAMBDA_PORT: must be a TCP port number/);
      assert.equal(stack.offlineGroup, undefined);
    } finally {
      stack.kill();
    }
  });
});

// ------------------------------------------------------------------ a fresh service

/**
 * A user's service made from nothing but what the README asks for: a command that
 * imports the service's own module, one handler file, one plugin block, bundled
 * by serverless-esbuild (its default CommonJS `.js` output, one-shot builds). Its
 * node_modules holds this package (the bundled CLI and local stack built afresh,
 * the compiled library and plugin of `npm run build`), the Framework, and a
 * pristine serverless-offline: no patch applied.
 */
function makeFreshService(base: string): { service: string; pkg: string } {
  for (const built of ['dist/src/index.js', 'dist/plugin/index.js']) {
    assert.ok(existsSync(join(root, built)), `${built} is missing: run \`npm run build\` (npm ci does) before this test`);
  }
  // The package, as installed: package.json, bin/, dist/.
  const pkg = join(base, 'package');
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  mkdirSync(join(pkg, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(root, 'bin', 'mm.js'), join(pkg, 'bin', 'mm.js'));
  symlinkSync(join(root, 'dist', 'src'), join(pkg, 'dist', 'src'), 'dir');
  symlinkSync(join(root, 'dist', 'plugin'), join(pkg, 'dist', 'plugin'), 'dir');
  // Its dependencies, where an installed package finds them.
  symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');

  const service = join(base, 'service');
  const modules = join(service, 'node_modules');
  mkdirSync(join(modules, '.bin'), { recursive: true });
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === '.bin' || name === 'serverless-offline' || name === 'serverless-middle-management' || name.startsWith('.')) continue;
    symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
  symlinkSync(pkg, join(modules, 'serverless-middle-management'), 'dir');
  symlinkSync(join('..', 'serverless-middle-management', 'bin', 'mm.js'), join(modules, '.bin', 'middle-management'));
  // serverless-offline as npm installs it: this repository's copy may still carry an old patch.
  cpSync(join(root, 'node_modules', 'serverless-offline'), join(modules, 'serverless-offline'), { recursive: true, dereference: true });
  const controller = join(modules, 'serverless-offline', 'src', 'lambda', 'routes', 'invocations', 'InvocationsController.js');
  const text = readFileSync(controller, 'utf8');
  const pristine = text.replace(
    /errorMessage: err\?\.message \?\? String\(err\),\n\s*\/\/ Like AWS Lambda[^\n]*\n(\s*)errorType: err\?\.name \|\| "Error",\n\s*trace: typeof err\?\.stack === "string" \? err\.stack\.split\("\\n"\) : \[\],/,
    'errorMessage: err.message,\n$1errorType: "Error",\n$1trace: err.stack.split("\\n"),',
  );
  writeFileSync(controller, pristine);
  assert.match(pristine, /errorType: "Error",/, 'serverless-offline is not the pristine 14.x the test expects');

  // No "type": serverless-esbuild's default output is CommonJS `.js`, next to this package.json's scope.
  writeFileSync(join(service, 'package.json'), `${JSON.stringify({ name: 'inventory', private: true }, null, 2)}\n`);
  writeFileSync(
    join(service, 'serverless.yml'),
    `service: inventory
frameworkVersion: '>=3'
plugins:
  - serverless-middle-management/plugin
  - serverless-esbuild
  - serverless-offline
provider:
  name: aws
  runtime: nodejs22.x
custom:
  middleManagement:
    handler: manage.handler
    allowList: [reindex]
  esbuild:
    # One-shot builds (as example/ has): every build writes its output, watched or not.
    skipRebuild: true
`,
  );
  mkdirSync(join(service, 'lib'));
  writeFileSync(
    join(service, 'lib', 'search.js'),
    `// The service's own module, which its maintenance command imports.
export function reindex(index) {
  return { index, documents: index.length * 7 };
}
`,
  );
  writeFileSync(
    join(service, 'manage.js'),
    `import { createManageHandler, defineCommand, Type } from 'serverless-middle-management';
import { reindex } from './lib/search.js';

const reindexCommand = defineCommand({
  description: 'Rebuilds a search index',
  args: Type.Object({ index: Type.String({ minLength: 1 }) }),
  run: ({ index }, ctx) => {
    ctx.log(\`reindexing \${index}\`);
    return reindex(index);
  },
});

export const handler = createManageHandler({ commands: { reindex: reindexCommand } });
`,
  );
  return { service, pkg };
}

describe('middle-management dev in a fresh service folder', { timeout: BOOT_TIMEOUT_MS + 120_000 }, () => {
  let base: string;
  let service: string;
  let pkg: string;
  let pkgEntries: string[];
  let dynamo: TtlEndpoint;
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  let api: string;
  const bin = () => join(service, 'node_modules', '.bin', 'middle-management');

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'mm-fresh-'));
    ({ service, pkg } = makeFreshService(base));
    // The CLI and the local stack, bundled from the current sources.
    await run(process.execPath, [join(root, 'scripts', 'build-cli.mjs'), '--quiet', '--outdir', join(pkg, 'dist', 'cli')], { cwd: root });
    await run(process.execPath, [join(root, 'scripts', 'build-local.mjs'), '--quiet', '--outdir', join(pkg, 'dist', 'local')], { cwd: root });
    pkgEntries = readdirSync(pkg).sort();
    dynamo = await startTtlEndpoint();
    env = stackEnv({ ...(await freePorts()), AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint });
    api = `http://127.0.0.1:${env.PORT}`;
    stack = new Stack(bin(), ['dev'], service, env);
    await stack.ready();
  });

  after(async () => {
    stack?.kill();
    await dynamo?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("prints the service's function, its allowlist, a token and a curl line for its command", () => {
    assert.match(stack.stdout, /local stack is ready \(service inventory, stage dev\)/);
    assert.match(stack.stdout, new RegExp(`http://localhost:${env.LAMBDA_PORT}/2015-03-31/functions/inventory-dev-manage/invocations`));
    assert.match(stack.stdout, /Allowed\s+reindex/);
    assert.match(stack.stdout, /curl -sS -X POST http:\/\/localhost:\d+\/__manage__\/reindex -H "Authorization: Bearer eyJ/);
    assert.match(stack.stdout, /npx middle-management dev token/);
  });

  it("prints a curl line that lists the service's command", async (t) => {
    if (!(await hasCurl())) return t.skip('no curl on this machine');
    const [list] = curlLines(stack.stdout);
    assert.deepEqual((await paste(list!)).commands.map((command: { name: string }) => command.name), ['reindex']);
  });

  it("runs the service's own command with a token from `middle-management dev token`", async () => {
    const { stdout } = await run(bin(), ['dev', 'token', '--sub', 'alice', '--groups', 'ops'], { cwd: service, env });
    const lines = stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected only a token, got:\n${stdout}`);
    assert.equal(claims(lines[0]!).sub, 'alice');

    const response = await post(`${api}/__manage__/reindex`, lines[0], { data: { index: 'books' } });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'succeeded');
    assert.deepEqual(body.result, { index: 'books', documents: 35 });
    assert.deepEqual(body.output, ['reindexing books']);
  });

  it('reports CommandNotAllowed as errorType for a direct invocation of a command off the allowlist, unpatched', async () => {
    const invokeUrl = `http://127.0.0.1:${env.LAMBDA_PORT}/2015-03-31/functions/inventory-dev-manage/invocations`;
    const refused = await invoke(invokeUrl, { command: 'echo', data: { message: 'hi' } });
    assert.equal(refused.functionError, 'Unhandled');
    assert.equal(refused.payload.errorType, 'CommandNotAllowed', JSON.stringify(refused.payload));
    const ran = await invoke(invokeUrl, { command: 'reindex', data: { index: 'x' }, actor: 'test' });
    assert.equal(ran.functionError, null, JSON.stringify(ran.payload));
    assert.equal(ran.payload.status, 'succeeded');
  });

  it('created the tables at the external endpoint, the state table with TTL', async () => {
    assert.ok(dynamo.operations.includes('CreateTable'));
    assert.deepEqual(dynamo.ttlUpdates, [{ TableName: 'inventory-dev-mm-state', TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }]);
    assert.deepEqual(await keyLayout(dynamo.client, 'inventory-dev-mm-audit'), definedLayout(auditTableDefinition('inventory-dev-mm-audit')));
    assert.match(stack.stdout, new RegExp(`at ${dynamo.endpoint.replace(/[.]/g, '\\.')} \\(state table TTL on\\)`));
  });

  it("keeps its state in the service's .middle-management/, never in the package", () => {
    const state = join(service, '.middle-management');
    assert.ok(existsSync(join(state, 'dev-issuer.json')), 'no issuer key in .middle-management/');
    const running = JSON.parse(readFileSync(join(state, 'stack.json'), 'utf8'));
    assert.equal(running.pid, stack.pid);
    assert.equal(running.functionName, 'inventory-dev-manage');
    assert.equal(readFileSync(join(state, '.gitignore'), 'utf8').split('\n').at(-2), '*');
    assert.deepEqual(readdirSync(pkg).sort(), pkgEntries, 'the stack wrote into the installed package');
    assert.ok(!existsSync(join(pkg, '.local')));
  });

  it("keeps serverless-esbuild's build output in .middle-management/esbuild/, not in the service's .esbuild/", () => {
    assert.ok(!existsSync(join(service, '.esbuild')), 'serverless-esbuild wrote .esbuild/ into the service');
    assert.ok(!existsSync(join(service, '.build')));
    const bundle = join(service, '.middle-management', 'esbuild', '.build', 'manage.js');
    assert.ok(existsSync(bundle), `no bundle at ${bundle}`);
    assert.match(readFileSync(bundle, 'utf8'), /reindexing/);
    assert.deepEqual(readdirSync(service).sort(), ['.middle-management', 'lib', 'manage.js', 'node_modules', 'package.json', 'serverless.yml']);
  });

  it('rebuilds once on a source change: its own output does not start the next build', async () => {
    const bundle = join(service, '.middle-management', 'esbuild', '.build', 'manage.js');
    const before = statSync(bundle).mtimeMs;
    const source = join(service, 'lib', 'search.js');
    writeFileSync(source, readFileSync(source, 'utf8').replace('index.length * 7', 'index.length * 7 + 0'));
    assert.ok(await waitUntil(() => statSync(bundle).mtimeMs > before, 30_000), 'serverless-esbuild did not rebuild on a change');
    // esbuild's watcher waits a little (chokidar); then the bundle must stay as it is.
    await new Promise((done) => setTimeout(done, 1_500));
    const settled = statSync(bundle).mtimeMs;
    await new Promise((done) => setTimeout(done, 3_000));
    assert.equal(statSync(bundle).mtimeMs, settled, 'the bundle keeps being rewritten: the watcher sees its own output');
  });

  it('stops everything on Ctrl-C and forgets the running stack', async () => {
    await stack.interrupt();
    assert.equal(stack.exitCode, 0, stack.output);
    await assert.rejects(fetch(`${api}/__manage__`), 'the API still answers');
    await assert.rejects(fetch(`http://127.0.0.1:${env.ISSUER_PORT}/.well-known/jwks.json`), 'the issuer still answers');
    assert.ok(!existsSync(join(service, '.middle-management', 'stack.json')));
    assert.ok(existsSync(join(service, '.middle-management', 'dev-issuer.json')), 'the key is kept for the next start');
  });
});
