/**
 * The built `mm` CLI, run as a child process against the real `manage`
 * handler (real dynalite, real JWT issuer) served on loopback: exit codes,
 * typed arguments, --json output, URL/token precedence, confirmation, and that
 * no token ever reaches the output except through `mm token`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Type } from '@sinclair/typebox';
import { defineCommand } from '../../src/command.js';
import { startStack, type TestStack } from '../support/stack.js';
import { serveHandler, type ServedHandler } from '../support/http-server.js';
import { buildCli, makeHome, mm as runMm, writeConfig, type MmOptions, type MmResult } from './helpers.js';

const typed = defineCommand({
  description: 'Returns its arguments, typed.',
  args: Type.Object({
    n: Type.Integer({ minimum: 0, maximum: 100 }),
    ratio: Type.Optional(Type.Number()),
    flag: Type.Optional(Type.Boolean()),
    ids: Type.Optional(Type.Array(Type.Integer())),
    tags: Type.Optional(Type.Array(Type.String())),
    mode: Type.Optional(Type.Union([Type.Literal('fast'), Type.Literal('safe')])),
    opts: Type.Optional(Type.Object({ a: Type.Number() })),
    label: Type.Optional(Type.String()),
  }),
  run: (args) => args,
});

const T = { timeout: 30_000 };

describe('mm against the manage handler', { timeout: 180_000 }, () => {
  let stack: TestStack;
  let served: ServedHandler;
  let token: string;
  let opsToken: string;
  const home = makeHome();
  /** Every output the CLI produced, to check for tokens at the end. */
  const outputs: MmResult[] = [];
  const secrets: string[] = [];

  const mm = async (args: string[], options: MmOptions = {}) => {
    const result = await runMm(args, {
      ...options,
      env: { HOME: home.home, MM_CONFIG_DIR: home.configDir, MM_URL: served.url, MM_TOKEN: token, ...options.env },
    });
    outputs.push(result);
    return result;
  };

  before(async () => {
    buildCli();
    stack = await startStack({
      commands: { typed: async () => ({ default: typed }) },
      env: { MANAGE_COMMAND_GROUPS: JSON.stringify({ sleep: ['ops'] }) },
    });
    served = await serveHandler(stack.handler);
    token = await stack.issuer.sign({ username: 'alice' }, { expiresIn: 3600 });
    opsToken = await stack.issuer.sign({ sub: 'olga', username: 'olga', groups: ['ops'] }, { expiresIn: 3600 });
    secrets.push(token, opsToken);
  });

  after(async () => {
    await served?.close();
    await stack?.close();
    home.cleanup();
  });

  test('0: mm run echo message=hello repeat=2 prints the result', T, async () => {
    const r = await mm(['run', 'echo', 'message=hello', 'repeat=2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /echo succeeded/);
    assert.match(r.stdout, /"message":"hello hello"/);
    assert.match(r.stdout, /execution\s+[0-9A-Z]{26}/);
    assert.match(r.stdout, /echoing 5 characters 2 time\(s\)/);
  });

  test('1: a failing command exits 1 and names its execution', T, async () => {
    const r = await mm(['run', 'fail', 'message=boom']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /boom/);
    assert.match(r.stderr, /mm show [0-9A-Z]{26}/);
  });

  test('2: a bad key=value stops before sending; unknown keys are named', T, async () => {
    const bad = await mm(['run', 'echo', 'message=hi', 'repeat=two']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /repeat must be an integer, got "two"/);
    const range = await mm(['run', 'echo', 'message=hi', 'repeat=11']);
    assert.equal(range.code, 2);
    assert.match(range.stderr, /repeat must be ≤ 10/);
    const unknown = await mm(['run', 'echo', 'mesage=hi']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown argument mesage \(did you mean message\?\)/);
    const missing = await mm(['run', 'echo']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument message/);
    const notKv = await mm(['run', 'echo', 'hello']);
    assert.equal(notKv.code, 2);
    assert.match(notKv.stderr, /"hello" is not key=value/);
    // Nothing of these reached the audit.
    const listed = await stack.http({ method: 'GET', path: '/__manage__/executions', token, query: { command: 'echo', limit: '100' } });
    assert.ok(!JSON.stringify(listed.body).includes('"two"'));
  });

  test('2: server-side InvalidRequest (dry run of a command without a plan), 413 and usage errors', T, async () => {
    const r = await mm(['run', 'fail', '--dry-run']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no dry run/);
    const small = await serveHandler(stack.withEnv({ MANAGE_MAX_BODY_BYTES: '100' }).handler);
    try {
      const big = await mm(['run', 'echo', `message=${'x'.repeat(300)}`, '--json'], { env: { MM_URL: small.url } });
      assert.equal(big.code, 2);
      assert.equal(JSON.parse(big.stdout).error.code, 'PayloadTooLarge');
    } finally {
      await small.close();
    }
    for (const args of [['bogus-subcommand'], ['run'], ['run', 'echo', '--no-such-flag'], ['executions', '--limit', '0'], ['run', 'echo', '--data-json', '[1]']]) {
      const usage = await mm(args);
      assert.equal(usage.code, 2, `${args.join(' ')}: ${usage.stderr}`);
    }
  });

  test('key=value arguments are typed by the schema: integer, number, boolean, arrays, enum, object', T, async () => {
    const r = await mm(['run', 'typed', 'n=3', 'ratio=0.5', 'flag=yes', 'ids=1,2,3', 'tags=a', 'tags=b', 'mode=fast', 'opts={"a":1}', 'label:="007"', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).result, { n: 3, ratio: 0.5, flag: true, ids: [1, 2, 3], tags: ['a', 'b'], mode: 'fast', opts: { a: 1 }, label: '007' });
    const json = await mm(['run', 'typed', 'ids=[4,5]', '--data-json', '{"n":7,"label":"x"}', '--json']);
    assert.equal(json.code, 0, json.stdout);
    assert.deepEqual(JSON.parse(json.stdout).result, { n: 7, ids: [4, 5], label: 'x' });
    const badItem = await mm(['run', 'typed', 'n=1', 'ids=1,x']);
    assert.equal(badItem.code, 2);
    assert.match(badItem.stderr, /ids\.1 must be an integer/);
    const badEnum = await mm(['run', 'typed', 'n=1', 'mode=slow']);
    assert.equal(badEnum.code, 2);
    assert.match(badEnum.stderr, /mode does not match any allowed form \("fast" \| "safe"\)/);
    const badJson = await mm(['run', 'typed', '--data-json', '{"n":"3"}']);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /n must be an integer, got "3"/);
  });

  test('3: a wrong token and no token exit 3', T, async () => {
    const wrong = await mm(['commands'], { env: { MM_TOKEN: 'aaaaaaaaaa.bbbbbbbbbbbb.cccccccccccc' } });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /valid bearer token/);
    const none = await mm(['run', 'echo', 'message=x'], { env: { MM_TOKEN: undefined } });
    assert.equal(none.code, 3);
    assert.match(none.stderr, /No token/);
    const expired = await stack.issuer.sign({}, { expiresIn: -10 });
    secrets.push(expired);
    const old = await mm(['run', 'echo', 'message=x', '--json'], { env: { MM_TOKEN: expired } });
    assert.equal(old.code, 3);
    assert.equal(JSON.parse(old.stdout).error.code, 'Unauthorized');
  });

  test('4: a command not allowed, and one the caller lacks the group for, exit 4', T, async () => {
    const notAllowed = await mm(['run', 'rm-rf']);
    assert.equal(notAllowed.code, 4);
    assert.match(notAllowed.stderr, /not allowed/);
    const forbidden = await mm(['run', 'sleep', 'ms=1', '--json']);
    assert.equal(forbidden.code, 4);
    assert.equal(JSON.parse(forbidden.stdout).error.code, 'Forbidden');
  });

  test('5: a run past the HTTP window exits 5 with its execution id', T, async () => {
    const short = await serveHandler(stack.withEnv({ MANAGE_HTTP_TIME_LIMIT_MS: '200' }).handler);
    try {
      const r = await mm(['run', 'sleep', 'ms=5000', '--no-wait'], { env: { MM_URL: short.url, MM_TOKEN: opsToken } });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /time limit/);
      assert.match(r.stderr, /execution\s+[0-9A-Z]{26}/);
    } finally {
      await short.close();
    }
  });

  test('6: an idempotency key reused with other arguments exits 6; reused as is, returns the first outcome', T, async () => {
    const key = `cli-test-${Date.now()}`;
    const first = await mm(['run', 'echo', 'message=one', '--idempotency-key', key, '--json']);
    assert.equal(first.code, 0, first.stdout);
    const again = await mm(['run', 'echo', 'message=one', '--idempotency-key', key, '--json']);
    assert.equal(again.code, 0);
    assert.equal(JSON.parse(again.stdout).executionId, JSON.parse(first.stdout).executionId);
    const other = await mm(['run', 'echo', 'message=two', '--idempotency-key', key]);
    assert.equal(other.code, 6);
  });

  test('7: an unreachable API and an audit store that is down exit 7', T, async () => {
    const port = await closedPort();
    const r = await mm(['run', 'echo', 'message=x'], { env: { MM_URL: `http://127.0.0.1:${port}` } });
    assert.equal(r.code, 7);
    assert.match(r.stderr, /Cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED \(4 tries\)/);

    const broken = await startStack();
    const brokenServed = await serveHandler(broken.handler);
    try {
      const brokenToken = await broken.issuer.sign({}, { expiresIn: 600 });
      secrets.push(brokenToken);
      await broken.dynamo.stop();
      const down = await mm(['run', 'echo', 'message=x', '--json'], { env: { MM_URL: brokenServed.url, MM_TOKEN: brokenToken } });
      assert.equal(down.code, 7, down.stdout);
      assert.equal(JSON.parse(down.stdout).error.code, 'AuditUnavailable');
    } finally {
      await brokenServed.close();
      await broken.close();
    }
  });

  test('--json prints exactly the response body on stdout and nothing on stderr, errors included', T, async () => {
    for (const args of [['run', 'echo', 'message=j'], ['run', 'fail'], ['run', 'rm-rf'], ['commands'], ['executions', '--limit', '2']]) {
      const r = await mm([...args, '--json']);
      assert.equal(r.stderr, '', `${args.join(' ')} wrote to stderr: ${r.stderr}`);
      assert.ok(r.stdout.endsWith('\n'));
      // The server's body is JSON.stringify output: byte-identical to a re-serialisation.
      assert.equal(r.stdout, `${JSON.stringify(JSON.parse(r.stdout))}\n`, args.join(' '));
    }
    const ok = JSON.parse((await mm(['run', 'echo', 'message=j', '--json'])).stdout);
    assert.deepEqual(Object.keys(ok).sort(), ['command', 'durationMs', 'executionId', 'finishedAt', 'output', 'result', 'startedAt', 'status']);
    const failed = JSON.parse((await mm(['run', 'fail', '--json'])).stdout);
    assert.equal(failed.error.code, 'CommandFailed');
    assert.match(failed.error.executionId, /^[0-9A-Z]{26}$/);
    const local = await mm(['run', 'echo', 'repeat=x', '--json']);
    assert.equal(local.code, 2);
    assert.equal(local.stderr, '');
    const body = JSON.parse(local.stdout);
    assert.equal(body.error.code, 'InvalidArguments');
    assert.deepEqual(body.error.issues.map((i: { path: string }) => i.path), ['/repeat']);
  });

  test('mm commands, mm executions, mm show', T, async () => {
    const commands = await mm(['commands']);
    assert.equal(commands.code, 0);
    assert.match(commands.stdout, /echo\s+Returns a message/);
    assert.match(commands.stdout, /repeat\s+integer\s+optional, 1–10, default 1\s+how many times/);
    assert.match(commands.stdout, /mm run echo message=<string> \[repeat=<integer>\]/);
    const run = JSON.parse((await mm(['run', 'echo', 'message=shown', 'secret=hunter2-very-secret', '--json'])).stdout);
    const list = await mm(['executions', '--command', 'echo', '--limit', '3']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^EXECUTION\s+COMMAND\s+STATUS\s+ACTOR\s+STARTED\s+DURATION/);
    assert.ok(list.stdout.includes(run.executionId));
    assert.equal(list.stdout.trim().split('\n').length, 4);
    const shown = await mm(['show', run.executionId]);
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /echo succeeded/);
    assert.match(shown.stdout, /actor\s+alice/);
    assert.match(shown.stdout, /\[REDACTED\]/);
    assert.ok(!shown.stdout.includes('hunter2'));
    const missing = await mm(['show', '01AAAAAAAAAAAAAAAAAAAAAAAA']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /No such execution/);
  });

  test('--url and --token override MM_URL and MM_TOKEN, which override the profile', T, async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    writeConfig(home.configDir, { defaultProfile: 'dev', profiles: { dev: { url: dead }, other: { url: served.url } } });
    // MM_URL over the profile.
    assert.equal((await mm(['run', 'noop'])).code, 0);
    // The profile alone (no MM_URL): its dead URL.
    assert.equal((await mm(['run', 'noop'], { env: { MM_URL: undefined } })).code, 7);
    // --url over MM_URL.
    assert.equal((await mm(['run', 'noop', '--url', served.url], { env: { MM_URL: dead } })).code, 0);
    // MM_PROFILE and --profile choose the profile.
    assert.equal((await mm(['run', 'noop'], { env: { MM_URL: undefined, MM_PROFILE: 'other' } })).code, 0);
    assert.equal((await mm(['--profile', 'other', 'run', 'noop'], { env: { MM_URL: undefined } })).code, 0);
    assert.equal((await mm(['--profile', 'nope', 'run', 'noop'])).code, 2);
    // --token over MM_TOKEN.
    assert.equal((await mm(['run', 'noop', '--token', token], { env: { MM_TOKEN: 'aaaaaaaaaa.bbbbbbbbbb.cccccccccc' } })).code, 0);
    assert.equal((await mm(['run', 'noop', '--token', 'aaaaaaaaaa.bbbbbbbbbb.cccccccccc'])).code, 3);
    // Plain http to a non-loopback host is refused before anything is sent.
    const insecure = await mm(['run', 'noop', '--url', 'http://example.com']);
    assert.equal(insecure.code, 2);
    assert.match(insecure.stderr, /plain HTTP/);
    writeConfig(home.configDir, { profiles: {} });
  });

  test('a profile with confirm: true refuses without a terminal unless --yes', T, async () => {
    const tester = await stack.issuer.sign({ sub: 'confirm-tester' }, { expiresIn: 600 });
    secrets.push(tester);
    writeConfig(home.configDir, { profiles: { prod: { url: served.url, confirm: true } } });
    const refused = await mm(['--profile', 'prod', 'run', 'echo', 'message=careful'], { env: { MM_TOKEN: tester } });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /asks for confirmation.*no terminal.*--yes/s);
    const listed = await stack.http({ method: 'GET', path: '/__manage__/executions', token: tester });
    assert.deepEqual(listed.body.executions, [], 'nothing ran');
    const yes = await mm(['--profile', 'prod', 'run', 'echo', 'message=careful', '--yes'], { env: { MM_TOKEN: tester } });
    assert.equal(yes.code, 0, yes.stderr);
    writeConfig(home.configDir, { profiles: {} });
  });

  test('mm token prints the token and only that', T, async () => {
    const r = await mm(['token']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${token}\n`);
    assert.equal(r.stderr, '');
    outputs.pop(); // the one output allowed to hold a token
  });

  test('no output of any command above holds a token', T, () => {
    assert.ok(outputs.length > 40, `only ${outputs.length} runs recorded`);
    for (const output of outputs) {
      for (const secret of secrets) {
        assert.ok(!output.stdout.includes(secret) && !output.stderr.includes(secret), `a token leaked:\n${output.stdout}\n${output.stderr}`);
      }
    }
  });
});

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
