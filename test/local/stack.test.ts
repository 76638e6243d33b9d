/**
 * The local stack as a user runs it (CONTRACT §6): `npm start` on free ports,
 * the API and the Lambda invoke endpoint, `npm run token`, and a clean stop.
 *
 * Run alone with `node --import tsx --test test/local/stack.test.ts`; it needs
 * no network beyond 127.0.0.1 but takes a few seconds to bundle and boot.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../../local/processes.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FUNCTION_NAME = 'middle-management-dev-manage';
const BOOT_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 10_000;
const JWT = /\beyJ[\w-]+\.[\w-]+\.[\w-]+\b/;


/** This machine's environment without anything that would change what the stack does. */
function stackEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('MANAGE_') || key.startsWith('AWS_ENDPOINT_URL') || key.startsWith('npm_')) continue;
    env[key] = value;
  }
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
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

/** `npm start` in its own process group, its output collected. */
class Stack {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn('npm', ['start'], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.on('exit', (code, signal) => (this.exitCode = code ?? (signal ? -1 : null)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The process group start.ts gives serverless-offline. */
  get offlineGroup(): number | undefined {
    const match = /serverless-offline is process group (\d+)/.exec(this.stderr);
    return match ? Number(match[1]) : undefined;
  }

  get output(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  async ready(): Promise<void> {
    const ok = await waitUntil(() => this.stdout.includes('local stack is ready') || this.exitCode !== undefined, BOOT_TIMEOUT_MS);
    assert.ok(ok && this.exitCode === undefined, `npm start did not become ready\n${this.output}`);
  }

  async exited(timeoutMs: number): Promise<number | null | undefined> {
    await waitUntil(() => this.exitCode !== undefined, timeoutMs);
    return this.exitCode;
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

describe('npm start', { timeout: BOOT_TIMEOUT_MS + 60_000 }, () => {
  let stack: Stack;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let api: string;
  let invokeUrl: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mm-stack-'));
    const [port, lambdaPort, dynamoPort, issuerPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    env = stackEnv({
      PORT: String(port),
      LAMBDA_PORT: String(lambdaPort),
      DYNAMODB_PORT: String(dynamoPort),
      ISSUER_PORT: String(issuerPort),
      // Leave the developer's .local/dev-issuer.json alone.
      DEV_ISSUER_FILE: join(dir, 'dev-issuer.json'),
    });
    api = `http://127.0.0.1:${port}`;
    invokeUrl = `http://127.0.0.1:${lambdaPort}/2015-03-31/functions/${FUNCTION_NAME}/invocations`;
    stack = new Stack(env);
    await stack.ready();
  });

  after(async () => {
    stack?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function echo(token: string | undefined, message: string): Promise<Response> {
    return fetch(`${api}/__manage__/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ data: { message } }),
    });
  }

  async function invoke(event: unknown): Promise<{ status: number; functionError: string | null; payload: any }> {
    const response = await fetch(invokeUrl, { method: 'POST', body: JSON.stringify(event) });
    return {
      status: response.status,
      functionError: response.headers.get('x-amz-function-error'),
      payload: await response.json(),
    };
  }

  it('prints the API URL, the invoke URL, a token and a curl example', () => {
    assert.match(stack.stdout, new RegExp(`http://localhost:${env.PORT}/__manage__`));
    assert.match(stack.stdout, new RegExp(`http://localhost:${env.LAMBDA_PORT}/2015-03-31/functions/${FUNCTION_NAME}/invocations`));
    assert.match(stack.stdout, JWT);
    assert.match(stack.stdout, /curl -sS -X POST http:\/\/localhost:\d+\/__manage__\/echo -H "Authorization: Bearer eyJ/);
  });

  it('runs echo over HTTP with the printed token', async () => {
    const token = JWT.exec(stack.stdout)![0];
    const response = await echo(token, 'hi');
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.command, 'echo');
    assert.equal(body.status, 'succeeded');
    assert.deepEqual(body.result, { message: 'hi' });
    assert.ok(Array.isArray(body.output));
    assert.equal(typeof body.executionId, 'string');
  });

  it('accepts a token from `npm run token`', async () => {
    const { stdout } = await promisify(execFile)('npm', ['run', '-s', 'token', '--', '--sub', 'tester', '--groups', 'ops,dev'], {
      cwd: root,
      env,
    });
    const lines = stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected exactly one line, got:\n${stdout}`);
    assert.match(lines[0]!, new RegExp(`^${JWT.source}$`));
    const claims = JSON.parse(Buffer.from(lines[0]!.split('.')[1]!, 'base64url').toString('utf8'));
    assert.equal(claims.sub, 'tester');
    assert.deepEqual(claims.groups, ['ops', 'dev']);

    const response = await echo(lines[0], 'from the token script');
    assert.equal(response.status, 200, await response.clone().text());
    assert.deepEqual((await response.json()).result, { message: 'from the token script' });
  });

  it('runs a command asynchronously through a worker invocation on the Lambda endpoint', async () => {
    const token = JWT.exec(stack.stdout)![0];
    const accepted = await fetch(`http://127.0.0.1:${env.PORT}/__manage__/sleep`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ data: { ms: 300 } }),
    });
    const body = await accepted.json();
    assert.equal(accepted.status, 202, JSON.stringify(body));
    assert.equal(accepted.headers.get('location'), `/__manage__/executions/${body.executionId}`);
    let status = body.status;
    for (let i = 0; i < 100 && status !== 'succeeded' && status !== 'failed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const shown = await fetch(`http://127.0.0.1:${env.PORT}${accepted.headers.get('location')}`, { headers: { authorization: `Bearer ${token}` } });
      status = (await shown.json()).status;
    }
    assert.equal(status, 'succeeded');
  });

  it('answers 401 without a token', async () => {
    const response = await echo(undefined, 'hi');
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await response.json()).error.code, 'Unauthorized');
  });

  it('runs a direct invocation on the Lambda endpoint', async () => {
    const { status, functionError, payload } = await invoke({ command: 'echo', data: { message: 'hi' } });
    assert.equal(status, 200);
    assert.equal(functionError, null, JSON.stringify(payload));
    assert.equal(payload.status, 'succeeded');
    assert.deepEqual(payload.result, { message: 'hi' });
  });

  it('reports the contract error name as errorType on direct invocations', async () => {
    const notAllowed = await invoke({ command: 'nope' });
    assert.equal(notAllowed.functionError, 'Unhandled');
    assert.equal(notAllowed.payload.errorType, 'CommandNotAllowed');

    const invalid = await invoke({ command: 'echo', data: { message: 42 } });
    assert.equal(invalid.payload.errorType, 'InvalidArguments');
  });

  it('stops every process it started on SIGINT', async () => {
    const offlineGroup = stack.offlineGroup;
    assert.ok(offlineGroup, `start.ts did not report serverless-offline's process group\n${stack.output}`);
    process.kill(-stack.pid, 'SIGINT');

    const gone = await waitUntil(() => !groupAlive(stack.pid) && !groupAlive(offlineGroup), STOP_TIMEOUT_MS);
    assert.ok(gone, `processes left after SIGINT\n${stack.output}`);
    assert.throws(() => process.kill(-stack.pid, 0), { code: 'ESRCH' });
    assert.throws(() => process.kill(-offlineGroup, 0), { code: 'ESRCH' });
    await assert.rejects(fetch(`${api}/__manage__`), 'the API still answers');
    await assert.rejects(fetch(`http://127.0.0.1:${env.DYNAMODB_PORT}/`), 'dynalite still answers');
    await assert.rejects(fetch(`http://127.0.0.1:${env.ISSUER_PORT}/.well-known/jwks.json`), 'the issuer still answers');
  });
});

describe('npm start with a bad configuration', { timeout: 60_000 }, () => {
  it('exits non-zero and names the variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mm-stack-'));
    const stack = new Stack(
      stackEnv({
        MANAGE_ALLOW_LIST: 'bogus',
        PORT: String(await freePort()),
        LAMBDA_PORT: String(await freePort()),
        DYNAMODB_PORT: String(await freePort()),
        ISSUER_PORT: String(await freePort()),
        DEV_ISSUER_FILE: join(dir, 'dev-issuer.json'),
      }),
    );
    try {
      const code = await stack.exited(45_000);
      assert.notEqual(code, undefined, `npm start is still running\n${stack.output}`);
      assert.notEqual(code, 0);
      assert.match(stack.stderr, /MANAGE_ALLOW_LIST/);
      assert.equal(stack.offlineGroup, undefined, 'serverless-offline was started despite the bad configuration');
    } finally {
      stack.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
