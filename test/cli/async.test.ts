/**
 * The client side of what the server may answer beyond a plain run, against a
 * small fake of the API: --async, --wait (and the default wait for long
 * commands), approve/reject, audit verify, retries of network failures with
 * the same Idempotency-Key, and the exit code of every kind of answer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planDigestOf } from '../../src/pipeline/rails.js';
import { buildCli, fakeServer, makeHome, mm as runMm, sendJson, type FakeServer, type MmOptions } from './helpers.js';

const T = { timeout: 30_000 };
const TOKEN = 'aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.cccccccccccccccccccc';
const ID = (n: number) => `01JASYNC${String(n).padStart(18, '0')}`;

const echoSchema = {
  type: 'object',
  required: ['message'],
  properties: { message: { type: 'string' }, repeat: { type: 'integer', minimum: 1, maximum: 10 } },
  additionalProperties: false,
};

/** Final status of each execution the fake knows, reached after two "running" polls. */
const FINAL: Record<string, string> = {
  [ID(1)]: 'succeeded',
  [ID(2)]: 'failed',
  [ID(3)]: 'timed_out',
  [ID(4)]: 'rejected',
  [ID(5)]: 'expired',
  [ID(6)]: 'running', // never ends
};

describe('mm --async, --wait, approve, reject, audit verify, retries', { timeout: 120_000 }, () => {
  let api: FakeServer;
  const home = makeHome();
  const polls = new Map<string, number>();
  let nextAsync = 1;
  let flakyCalls = 0;

  const mm = (args: string[], options: MmOptions = {}) =>
    runMm(args, { ...options, env: { HOME: home.home, MM_CONFIG_DIR: home.configDir, MM_URL: api.url, MM_TOKEN: TOKEN, ...options.env } });
  const posts = (command: string) => api.requests.filter((r) => r.method === 'POST' && r.path === `/__manage__/${command}`);

  before(async () => {
    buildCli();
    api = await fakeServer(async (req, res) => {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return sendJson(res, 401, { error: { code: 'Unauthorized', message: 'A valid bearer token is required.' } });
      const segments = req.path.split('/').filter(Boolean);
      if (req.method === 'GET' && req.path === '/__manage__') {
        return sendJson(res, 200, {
          commands: [
            { name: 'echo', description: 'echo', schema: echoSchema, timeLimitMs: 30_000 },
            { name: 'long', description: 'takes long', schema: { type: 'object', properties: {}, additionalProperties: false }, timeLimitMs: 600_000 },
            { name: 'loose', description: 'no schema known to the client' },
          ],
        });
      }
      if (req.method === 'GET' && segments[1] === 'executions' && segments.length === 3) {
        const id = segments[2]!;
        if (id === ID(11)) {
          // Index lag right after a 202: the record is not readable for the first two reads.
          const n = (polls.get(id) ?? 0) + 1;
          polls.set(id, n);
          if (n <= 2) return sendJson(res, 404, { error: { code: 'NotFound', message: 'No such execution.' } });
          return sendJson(res, 200, { executionId: id, command: 'lagging', status: 'succeeded', actor: { kind: 'token', issuer: 'x', subject: 'alice', groups: [] }, args: {}, startedAt: 'x', finishedAt: 'x', durationMs: 5, result: { late: true }, output: [] });
        }
        if (id === ID(10)) {
          // A record whose digest is not that of the arguments it shows.
          return sendJson(res, 200, { executionId: id, command: 'long', status: 'awaiting_approval', actor: { kind: 'token', issuer: 'x', subject: 'alice', groups: [] }, args: { table: 'customers' }, startedAt: 'x', planDigest: planDigestOf('long', { table: 'orders' }, {}) });
        }
        const final = FINAL[id];
        if (!final) return sendJson(res, 404, { error: { code: 'NotFound', message: 'No such execution.' } });
        const n = (polls.get(id) ?? 0) + 1;
        polls.set(id, n);
        // First read: the request as an approver sees it before approving.
        const status = n === 1 ? 'awaiting_approval' : n < 3 ? 'running' : final;
        return sendJson(res, 200, {
          executionId: id,
          command: 'long',
          status,
          actor: { kind: 'token', issuer: 'x', subject: 'alice', username: 'alice', groups: [] },
          args: {},
          startedAt: '2025-01-01T00:00:00.000Z',
          planDigest: planDigestOf('long', {}, {}),
          ...(status === 'succeeded' ? { result: { done: true }, output: ['all done'], durationMs: 1234, finishedAt: '2025-01-01T00:00:01.234Z' } : {}),
          ...(status === 'failed' ? { error: { code: 'CommandFailed', message: 'it broke' } } : {}),
        });
      }
      if (req.method === 'POST' && segments[1] === 'executions' && segments.length === 4) {
        const [, , id, decision] = segments;
        if (decision === 'approve') return sendJson(res, 202, { executionId: id, command: 'long', status: 'running' });
        if (decision === 'reject') return sendJson(res, 200, { executionId: id, command: 'long', status: 'rejected' });
      }
      if (req.method === 'GET' && req.path === '/__manage__/audit/verify') {
        if (req.query.get('command') === 'broken') {
          const problems = [{ command: 'broken', seq: 3, executionId: ID(9), problem: 'altered', detail: 'hash does not match the record' }];
          return sendJson(res, 200, { ok: false, keyed: false, chains: [{ command: 'broken', records: 5, problems }], problems });
        }
        return sendJson(res, 200, {
          ok: true,
          keyed: true,
          chains: [
            { command: 'echo', records: 9, problems: [] },
            { command: 'long', records: 3, problems: [] },
          ],
          problems: [],
        });
      }
      if (req.method === 'POST' && segments.length === 2) {
        const command = segments[1]!;
        const asyncWanted = req.headers.prefer === 'respond-async';
        switch (command) {
          case 'flaky':
            if (++flakyCalls === 1) {
              // The first try gets no answer at all.
              res.socket?.destroy();
              return;
            }
            return sendJson(res, 200, { executionId: ID(7), command, status: 'succeeded', result: null, output: [], startedAt: 'x', finishedAt: 'x', durationMs: 1 });
          case 'lagging':
            return sendJson(res, 202, { executionId: ID(11), command, status: 'accepted' }, { location: `/__manage__/executions/${ID(11)}` });
          case 'awaiting':
            return sendJson(res, 202, { executionId: ID(8), command, status: 'awaiting_approval' });
          case 'awaiting-linked':
            return sendJson(res, 202, { executionId: ID(8), command, status: 'awaiting_approval', approveUrl: `https://ops.example.com/__manage__/console#/executions/${ID(8)}` });
          case 'awaiting-garbled':
            return sendJson(res, 202, { executionId: ID(8), command, status: 'awaiting_approval', approveUrl: 'https://ops.example.com/\u001b]8;;https://evil.example\u0007x' });
          case 'down':
            return sendJson(res, 503, { message: 'Service Unavailable' });
          case 'bad-gateway':
            return res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>') as unknown as void;
          case 'throttled':
            return sendJson(res, 429, { message: 'Too Many Requests' });
          case 'gateway-timeout':
            return sendJson(res, 504, { message: 'Endpoint request timed out' });
          case 'internal':
            return sendJson(res, 500, { error: { code: 'InternalError', message: 'Internal error.' } });
          case 'loose':
            return sendJson(res, 400, {
              error: { code: 'InvalidArguments', message: 'Invalid arguments: /a must be integer; /b is required', issues: [{ path: '/a', message: 'must be integer' }, { path: '/b', message: 'is required' }] },
            });
          default: {
            if (asyncWanted) {
              const id = req.query.get('final') ?? ID(nextAsync++);
              return sendJson(res, 202, { executionId: id, command, status: 'accepted' }, { location: `/__manage__/executions/${id}` });
            }
            const data = JSON.parse(req.body || '{}').data ?? {};
            return sendJson(res, 200, { executionId: ID(99), command, status: 'succeeded', result: data, output: ['sync'], startedAt: 'x', finishedAt: 'x', durationMs: 3 });
          }
        }
      }
      return sendJson(res, 404, { error: { code: 'NotFound', message: 'No such route.' } });
    });
  });

  after(async () => {
    await api?.close();
    home.cleanup();
  });

  test('--async sends Prefer: respond-async and an Idempotency-Key, prints the execution id, exits 0', T, async () => {
    const r = await mm(['run', 'echo', 'message=later', '--async']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${ID(1)}\n`);
    assert.match(r.stderr, /mm show 01JASYNC/);
    const sent = posts('echo').at(-1)!;
    assert.equal(sent.headers.prefer, 'respond-async');
    assert.match(String(sent.headers['idempotency-key']), /^[0-9a-f-]{36}$/);
    assert.deepEqual(JSON.parse(sent.body), { data: { message: 'later' } });
    const json = await mm(['run', 'echo', 'message=later', '--async', '--json']);
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), { executionId: ID(2), command: 'echo', status: 'accepted' });
    assert.equal(json.stderr, '');
  });

  test('--wait follows the execution; the exit code is its outcome', T, async () => {
    const cases: [number, number, RegExp][] = [
      [1, 0, /long succeeded in 1\.23 s[\s\S]*\{"done":true\}[\s\S]*all done/],
      [2, 1, /long failed[\s\S]*CommandFailed: it broke/],
      [3, 5, /long timed_out/],
      [4, 4, /long rejected/],
      [5, 5, /long expired/],
    ];
    // Each known execution ends in its own status; approve --wait follows it with the same code as run --wait.
    for (const [n, code, output] of cases) {
      polls.delete(ID(n));
      const r = await mm(['approve', ID(n), '--wait', '--yes']);
      assert.equal(r.code, code, `${FINAL[ID(n)]}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, output);
      assert.ok((polls.get(ID(n)) ?? 0) >= 3, 'polled until the end');
    }
  });

  test('mm run --wait polls GET /__manage__/executions/{id} and prints the final record; --json prints its body', T, async () => {
    nextAsync = 1;
    polls.delete(ID(1));
    const r = await mm(['run', 'echo', 'message=w', '--wait']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /long succeeded/);
    assert.equal(posts('echo').at(-1)!.headers.prefer, 'respond-async');
    nextAsync = 2;
    polls.delete(ID(2));
    const json = await mm(['run', 'echo', 'message=w', '--wait', '--json']);
    assert.equal(json.code, 1);
    const body = JSON.parse(json.stdout);
    assert.equal(body.status, 'failed');
    assert.equal(json.stdout, `${JSON.stringify(body)}\n`);
    assert.equal(json.stderr, '');
  });

  test('mm run --wait right after a 202 treats a 404 as "not yet" (index lag) and follows the execution to its end', T, async () => {
    polls.delete(ID(11));
    const r = await mm(['run', 'lagging', '--wait'], { env: { MM_POLL_INTERVAL_MS: '20' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lagging succeeded/);
    assert.equal(polls.get(ID(11)), 3, 'two 404s, then the record');
  });

  test('a command longer than the HTTP window waits by default; --no-wait runs it synchronously', T, async () => {
    nextAsync = 1;
    polls.delete(ID(1));
    const r = await mm(['run', 'long']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(posts('long').at(-1)!.headers.prefer, 'respond-async');
    assert.match(r.stdout, /long succeeded/);
    const sync = await mm(['run', 'long', '--no-wait']);
    assert.equal(sync.code, 0);
    assert.equal(posts('long').at(-1)!.headers.prefer, undefined);
    assert.match(sync.stdout, /sync/);
    const short = await mm(['run', 'echo', 'message=x']);
    assert.equal(posts('echo').at(-1)!.headers.prefer, undefined, 'a short command runs synchronously');
    assert.equal(short.code, 0);
  });

  test('--wait-timeout gives up with exit 5 and says the execution goes on; --async with --wait is a usage error', T, async () => {
    polls.delete(ID(6));
    const r = await mm(['approve', ID(6), '--wait', '--wait-timeout', '0.3', '--yes']);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /Still running after \d+ s; the execution goes on.*mm show/);
    const both = await mm(['run', 'echo', 'message=x', '--async', '--wait']);
    assert.equal(both.code, 2);
    const badTimeout = await mm(['approve', ID(6), '--wait', '--wait-timeout', 'soon']);
    assert.equal(badTimeout.code, 2);
  });

  test('awaiting approval exits 0 and says how to approve; approve and reject post the decision', T, async () => {
    const r = await mm(['run', 'awaiting']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${ID(8)}\n`);
    assert.match(r.stderr, /awaits approval.*mm approve 01JASYNC/);
    assert.doesNotMatch(r.stderr, /web console/, 'no approveUrl, no link');
    const linked = await mm(['run', 'awaiting-linked']);
    assert.equal(linked.code, 0);
    assert.equal(linked.stdout, `${ID(8)}\n`);
    assert.ok(linked.stderr.includes(`web console's link: https://ops.example.com/__manage__/console#/executions/${ID(8)}`), linked.stderr);
    const garbled = await mm(['run', 'awaiting-garbled']);
    assert.equal(garbled.code, 0);
    assert.doesNotMatch(garbled.stderr, /web console|evil|\u001b\]/, 'a link that is no plain URL is not printed');
    const decisions = () => api.requests.filter((req) => req.method === 'POST' && req.path.endsWith('/approve')).length;
    const before = decisions();
    // Nothing is approved blind: a record the approver cannot read is not approved.
    const unreadable = await mm(['approve', ID(8), '--yes']);
    assert.notEqual(unreadable.code, 0);
    assert.match(unreadable.stderr, /No such execution/);
    // Without a terminal to ask on, approving needs --yes (after the request was shown).
    polls.delete(ID(1));
    const unasked = await mm(['approve', ID(1)]);
    assert.equal(unasked.code, 2, unasked.stderr);
    assert.match(unasked.stderr, /plan digest {2}[0-9a-f]{64}[\s\S]*--yes/);
    // A record whose digest does not match the arguments shown is refused.
    const forged = await mm(['approve', ID(10), '--yes']);
    assert.equal(forged.code, 6, forged.stderr);
    assert.equal(decisions(), before, 'nothing posted');
    // The request is shown (command, arguments, requester, digest), and its digest is sent.
    polls.delete(ID(1));
    const approve = await mm(['approve', ID(1), '--yes']);
    assert.equal(approve.code, 0, approve.stderr);
    assert.match(approve.stderr, /Approval of long[\s\S]*requested by[\s\S]*alice[\s\S]*arguments +\{\}[\s\S]*plan digest/);
    assert.match(approve.stdout, /Approved execution 01JASYNC0+1 \(long\): running/);
    const sent = api.requests.at(-1)!;
    assert.equal(sent.path, `/__manage__/executions/${ID(1)}/approve`);
    assert.deepEqual(JSON.parse(sent.body), { planDigest: planDigestOf('long', {}, {}) });
    const reject = await mm(['reject', ID(8), '--json']);
    assert.equal(reject.code, 0);
    assert.deepEqual(JSON.parse(reject.stdout), { executionId: ID(8), command: 'long', status: 'rejected' });
    assert.equal(api.requests.at(-1)!.path, `/__manage__/executions/${ID(8)}/reject`);
  });

  test('mm audit verify: exit 0 when intact, 1 with the problems listed; --since is sent as ISO-8601', T, async () => {
    const good = await mm(['audit', 'verify', '--since', '24h']);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /Audit trail verified \(all commands since .*\): 12 records in 2 chains, HMAC-keyed\./);
    const since = Date.parse(api.requests.at(-1)!.query.get('since')!);
    assert.ok(Math.abs(since - (Date.now() - 86_400_000)) < 60_000);
    const bad = await mm(['audit', 'verify', '--command', 'broken']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /1 problem .*\n  - broken seq 3 01JASYNC0+9: altered: hash does not match the record/);
    assert.equal(api.requests.at(-1)!.query.get('command'), 'broken');
    const json = await mm(['audit', 'verify', '--command', 'broken', '--json']);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.stdout).ok, false);
    assert.equal((await mm(['audit', 'verify', '--since', 'last tuesday'])).code, 2);
    const iso = await mm(['audit', 'verify', '--since', '2025-01-31']);
    assert.equal(iso.code, 0);
    assert.equal(api.requests.at(-1)!.query.get('since'), '2025-01-31T00:00:00.000Z');
  });

  test('a network failure is retried with the same Idempotency-Key; a given key is sent as is', T, async () => {
    const r = await mm(['run', 'flaky', '--idempotency-key', 'ticket-4711']);
    assert.equal(r.code, 0, r.stderr);
    const tries = posts('flaky');
    assert.equal(tries.length, 2);
    assert.deepEqual(tries.map((t) => t.headers['idempotency-key']), ['ticket-4711', 'ticket-4711']);
    const bad = await mm(['run', 'echo', 'message=x', '--idempotency-key', 'has space']);
    assert.equal(bad.code, 2);
  });

  test('exit codes of gateway and service answers: 503/502/429/500 → 7, 504 → 5, server InvalidArguments → 2', T, async () => {
    for (const [command, code] of [['down', 7], ['bad-gateway', 7], ['throttled', 7], ['internal', 7], ['gateway-timeout', 5]] as const) {
      const r = await mm(['run', command]);
      assert.equal(r.code, code, `${command}: ${r.stderr}`);
    }
    const html = await mm(['run', 'bad-gateway', '--json']);
    assert.equal(html.stdout, '<html>Bad Gateway</html>\n', '--json prints the body as received');
    const loose = await mm(['run', 'loose', 'a=x']);
    assert.equal(loose.code, 2);
    assert.match(loose.stderr, /\/a must be integer/);
    const unauthorized = await mm(['commands'], { env: { MM_TOKEN: 'zzzzzzzzzz.zzzzzzzzzz.zzzzzzzzzz' } });
    assert.equal(unauthorized.code, 3);
  });

  test('invalid arguments are never sent', T, async () => {
    const before = posts('echo').length;
    for (const args of [['repeat=x'], ['message=a', 'repeat=0'], ['nope=1'], ['message=a', 'message=b']]) {
      const r = await mm(['run', 'echo', ...args]);
      assert.equal(r.code, 2, args.join(' '));
    }
    assert.equal(posts('echo').length, before);
  });

  test('without a terminal: no spinner, no colours, nothing on stderr for a plain success', T, async () => {
    const r = await mm(['run', 'echo', 'message=plain'], { env: { NO_COLOR: undefined } });
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    assert.ok(!r.stdout.includes('\u001b['), 'no ANSI escapes');
  });
});
