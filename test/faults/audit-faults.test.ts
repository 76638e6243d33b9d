/**
 * Fault injection (issue 6): the audit store failing at the adapter and at the
 * network, under the real handler.
 *
 * - the attempt write fails → the command does not run, 503 AuditUnavailable, fast;
 * - the outcome write fails → it is retried with back-off; if it finally fails,
 *   the attempt record still shows the execution as started and the response is
 *   the command's outcome with `auditRecorded: false`;
 * - nothing escapes as an unhandled rejection.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type TestStack } from '../support/stack.js';
import { auditCensus, countItems, sideEffectCommand, within } from '../security/support.js';
import {
  faultyStore,
  forward,
  internalError,
  startDynamoProxy,
  throttle,
  watchUnhandledRejections,
  type DynamoProxy,
  type ProxiedRequest,
  type ProxyAction,
} from './support.js';

const touch = sideEffectCommand();
const unhandled = watchUnhandledRejections();
let stack: TestStack;
let token: string;

before(async () => {
  stack = await startStack({ commands: { touch: touch.loader } });
  token = await stack.token();
});
after(async () => {
  await stack.close();
  // Give late rejections (timers of abandoned SDK requests) a moment to surface.
  await new Promise((resolve) => setTimeout(resolve, 50));
  unhandled.stop();
  assert.deepEqual(unhandled.reasons.map(String), [], 'no unhandled rejection');
});

const runTouch = (target: TestStack, label: string) =>
  target.http({ path: '/__manage__/touch', token, body: { data: { label } } });

/** Runs a request and checks the fail-closed answer: 503, not run, nothing written, fast. */
async function failsClosed(target: TestStack, label: string, maxMs: number) {
  const runs = touch.runs.length;
  const items = await countItems(stack.dynamo);
  const started = Date.now();
  const response = await within(maxMs + 2000, 'the request', runTouch(target, label));
  const elapsed = Date.now() - started;
  assert.equal(response.status, 503, response.raw);
  assert.equal(response.body.error.code, 'AuditUnavailable');
  assert.equal(touch.runs.length, runs, 'the command did not run');
  assert.ok(!touch.runs.includes(label));
  assert.equal(await countItems(stack.dynamo), items, 'no record was left behind');
  assert.ok(elapsed < maxMs, `answered in ${elapsed} ms (limit ${maxMs})`);
  assert.doesNotMatch(response.raw, /\n\s+at |Throttl|ECONNREFUSED|socket/i, 'no internals in the response');
  return elapsed;
}

/** The execution a response names must have its attempt; returns what the audit says of it. */
async function attemptShowsStarted(executionId: string) {
  const record = await stack.audit.getExecution(executionId);
  assert.ok(record, 'the attempt record exists');
  assert.equal(record.outcomeRecorded, false);
  assert.ok(['running', 'timed_out'].includes(record.status), `status ${record.status}: started, outcome unknown`);
  assert.equal(record.command, 'touch');
  return record;
}

describe('adapter level: a failing AuditStore', { timeout: 20_000 }, () => {
  it('attempt write fails → 503 AuditUnavailable, the command does not run (HTTP and direct invocation)', async () => {
    for (const error of [new Error('ProvisionedThroughputExceededException'), 'a string, not an Error', undefined, null]) {
      const store = faultyStore(stack.audit, (kind) => (kind === 'attempt' ? (error ?? new Error('undefined rejection')) : undefined));
      const target = stack.withEnv({}, { audit: store });
      await failsClosed(target, 'adapter-attempt', 1000);
      const runs = touch.runs.length;
      await assert.rejects(target.invoke({ command: 'touch', data: { label: 'invoke' } }), { name: 'AuditUnavailable' });
      assert.equal(touch.runs.length, runs);
      assert.equal(store.calls.filter((c) => c.kind === 'outcome').length, 0, 'no outcome without an attempt');
    }
  });

  it('outcome write fails twice, then succeeds → retried with growing back-off, recorded, response unchanged', async () => {
    const store = faultyStore(stack.audit, (kind, n) => (kind === 'outcome' && n <= 2 ? new Error('throttled') : undefined));
    const target = stack.withEnv({}, { audit: store });
    const response = await runTouch(target, 'retried');
    assert.equal(response.status, 200, response.raw);
    assert.equal(response.body.auditRecorded, undefined);
    const outcomes = store.calls.filter((c) => c.kind === 'outcome');
    assert.equal(outcomes.length, 3);
    const gaps = [outcomes[1]!.at - outcomes[0]!.at, outcomes[2]!.at - outcomes[1]!.at];
    assert.ok(gaps[0]! >= 50, `first retry after ${gaps[0]} ms`);
    assert.ok(gaps[1]! > gaps[0]!, `back-off grows: ${gaps.join(' ms, ')} ms`);
    const record = await stack.audit.getExecution(response.body.executionId);
    assert.equal(record?.status, 'succeeded');
    assert.equal(record?.outcomeRecorded, true);
  });

  it('outcome write always fails → the command’s outcome with auditRecorded:false; the attempt shows it started', async () => {
    const store = faultyStore(stack.audit, (kind) => (kind === 'outcome' ? new Error('gone') : undefined));
    const target = stack.withEnv({ MANAGE_HTTP_TIME_LIMIT_MS: '150' }, { audit: store });

    const runs = touch.runs.length;
    const ok = await runTouch(target, 'outcome-lost');
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.result, { touched: true });
    assert.equal(ok.body.auditRecorded, false);
    assert.equal(touch.runs.length, runs + 1, 'ran exactly once');
    assert.ok(store.calls.filter((c) => c.kind === 'outcome').length >= 2, 'the outcome write was retried');
    await attemptShowsStarted(ok.body.executionId);

    const failed = await target.http({ path: '/__manage__/fail', token, body: { data: { message: 'disk full' } } });
    assert.equal(failed.status, 500);
    assert.equal(failed.body.error.code, 'CommandFailed');
    assert.equal(failed.body.error.message, 'disk full');
    assert.equal(failed.body.error.auditRecorded, false);
    assert.ok(failed.body.error.executionId);

    const slow = await target.http({ path: '/__manage__/sleep', token, body: { data: { ms: 5000 } } });
    assert.equal(slow.status, 504);
    assert.equal(slow.body.error.auditRecorded, false);

    const invoked = await target.invoke({ command: 'touch', data: { label: 'invoked' } });
    assert.equal(invoked.status, 'succeeded');
    assert.equal(invoked.auditRecorded, false);
  });
});

describe('network level: a proxy in front of dynalite', { timeout: 60_000 }, () => {
  let proxy: DynamoProxy;
  /** A fresh handler per test (its own DynamoDB client and audit store), so one test's stuck request cannot hold up the next. */
  let target: TestStack;

  before(async () => {
    proxy = await startDynamoProxy(stack.dynamo.endpoint);
  });
  beforeEach(() => {
    proxy.rule = () => forward;
    target = stack.withEnv({ AWS_ENDPOINT_URL_DYNAMODB: proxy.url });
  });
  after(() => proxy.close());

  const onWrite = (kind: 'attempt' | 'outcome', action: ProxyAction | ((request: ProxiedRequest, n: number) => ProxyAction)) => {
    let n = 0;
    proxy.rule = (request) => {
      if (request.write !== kind) return forward;
      n++;
      return typeof action === 'function' ? action(request, n) : action;
    };
  };

  it('control: through the proxy, a run is audited completely', async () => {
    proxy.rule = () => forward;
    const response = await runTouch(target, 'via-proxy');
    assert.equal(response.status, 200, response.raw);
    const record = await stack.audit.getExecution(response.body.executionId);
    assert.equal(record?.outcomeRecorded, true);
    assert.ok(proxy.requests.some((r) => r.write === 'attempt') && proxy.requests.some((r) => r.write === 'outcome'));
  });

  it('attempt write throttled (HTTP 400 ThrottlingException, every try) → 503 fast, not run', async () => {
    onWrite('attempt', throttle);
    await failsClosed(target, 'throttled-attempt', 3000);
  });

  it('attempt write answered HTTP 500 (every try) → 503 fast, not run', async () => {
    onWrite('attempt', internalError);
    await failsClosed(target, 'error-attempt', 3000);
  });

  it('attempt write: the connection is reset → 503 fast, not run', async () => {
    onWrite('attempt', { kind: 'reset' });
    await failsClosed(target, 'reset-attempt', 3000);
  });

  it('[BUG reproduction] attempt write never answered (black hole) → 503 within the client’s timeouts, not run', async () => {
    onWrite('attempt', { kind: 'hang' });
    // maxAttempts 2 × requestTimeout 2 s, plus back-off. The SDK only enforces
    // requestTimeout with throwOnRequestTimeout: true; without it, it logs a warning and waits forever.
    await failsClosed(target, 'hung-attempt', 6500);
  });

  it('one audit write that never returns does not hold up later runs of the command', async () => {
    // Appends to a command's chain are queued per instance; without an enforced request
    // timeout the stuck write never settles, and every later run of that command on this
    // instance waits behind it for ever.
    onWrite('attempt', (_request, n) => (n === 1 ? { kind: 'hang' } : forward));
    const first = runTouch(target, 'stuck-first').catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await within(8000, 'the second request', runTouch(target, 'after-stuck'));
    assert.equal(second.status, 200, second.raw);
    // The stuck one itself is the black-hole case above; it settles at the latest when the proxy closes.
    void first;
  });

  it('a throttle that clears on the retry: the run goes through, audited once', async () => {
    onWrite('attempt', (_request, n) => (n === 1 ? throttle : forward));
    const response = await within(8000, 'the request', runTouch(target, 'throttled-once'));
    assert.equal(response.status, 200, response.raw);
    const census = await auditCensus(stack.dynamo);
    assert.deepEqual(census.executions.get(response.body.executionId), { attempt: 1, outcome: 1, other: 0 });
  });

  it('slow store (every request +150 ms) → still answered and fully audited', async () => {
    proxy.rule = () => ({ kind: 'delay', ms: 150 });
    const started = Date.now();
    const response = await within(8000, 'the request', runTouch(target, 'slow'));
    assert.equal(response.status, 200, response.raw);
    assert.ok(Date.now() - started >= 300, 'both writes waited');
    const record = await stack.audit.getExecution(response.body.executionId);
    assert.equal(record?.outcomeRecorded, true);
  });

  it('outcome write throttled every time → retried, then auditRecorded:false; the attempt record stays', async () => {
    onWrite('outcome', throttle);
    const started = Date.now();
    const response = await within(15_000, 'the request', runTouch(target, 'outcome-throttled'));
    assert.equal(response.status, 200, response.raw);
    assert.equal(response.body.auditRecorded, false);
    // Counted by label: an earlier test's black-holed request may still finish meanwhile.
    assert.equal(touch.runs.filter((label) => label === 'outcome-throttled').length, 1);
    assert.ok(proxy.requests.filter((r) => r.write === 'outcome').length >= 3, 'retried (SDK and pipeline)');
    assert.ok(Date.now() - started < 15_000);
    await attemptShowsStarted(response.body.executionId);
  });

  it('outcome write answered 500 every time → auditRecorded:false; a failing command still reports its own error', async () => {
    onWrite('outcome', internalError);
    const response = await within(15_000, 'the request', target.http({ path: '/__manage__/fail', token, body: { data: { message: 'boom' } } }));
    assert.equal(response.status, 500);
    assert.equal(response.body.error.code, 'CommandFailed');
    assert.equal(response.body.error.message, 'boom');
    assert.equal(response.body.error.auditRecorded, false);
  });

  it('the store goes away between the attempt and the outcome → auditRecorded:false, the attempt stays', async () => {
    const other = await startDynamoProxy(stack.dynamo.endpoint);
    try {
      const stopping = stack.withEnv({ AWS_ENDPOINT_URL_DYNAMODB: other.url });
      other.rule = (request) => {
        if (request.write === 'outcome') void other.stop();
        return request.write === 'outcome' ? { kind: 'reset' } : forward;
      };
      const runs = touch.runs.length;
      const response = await within(15_000, 'the request', runTouch(stopping, 'store-vanished'));
      assert.equal(response.status, 200, response.raw);
      assert.equal(response.body.auditRecorded, false);
      assert.equal(touch.runs.length, runs + 1);
      await attemptShowsStarted(response.body.executionId);
      // And with the store stopped, the next request fails closed.
      await failsClosed(stopping, 'after-stop', 3000);
    } finally {
      await other.close();
    }
  });

  it('[BUG reproduction] an attempt write that lands but whose answer is lost leaves no phantom execution', async () => {
    // The write reaches the table; its response arrives after the SDK's 2 s request timeout.
    // The SDK's retry then fails its condition (the item exists) → 503, the command is not
    // run — yet the table keeps an attempt record claiming it started.
    onWrite('attempt', (_request, n) => (n === 1 ? { kind: 'holdResponse', ms: 2600 } : forward));
    const runs = touch.runs.length;
    const before = await auditCensus(stack.dynamo);
    const response = await within(12_000, 'the request', runTouch(target, 'ambiguous-attempt'));
    const after = await auditCensus(stack.dynamo);
    const added = [...after.executions].filter(([id]) => !before.executions.has(id));
    if (response.status === 503) {
      assert.equal(touch.runs.length, runs, 'not run');
      assert.deepEqual(added, [], `a 503 (not run) left audit records: ${JSON.stringify(added)}`);
    } else {
      assert.equal(response.status, 200, response.raw);
      assert.equal(touch.runs.length, runs + 1, 'ran once');
      assert.deepEqual(added, [[response.body.executionId, { attempt: 1, outcome: 1, other: 0 }]]);
    }
  });

  it('[BUG reproduction] an outcome write that lands but whose answer is lost is not reported as lost', async () => {
    onWrite('outcome', (_request, n) => (n === 1 ? { kind: 'holdResponse', ms: 2600 } : forward));
    const response = await within(15_000, 'the request', runTouch(target, 'ambiguous-outcome'));
    assert.equal(response.status, 200, response.raw);
    const census = await auditCensus(stack.dynamo);
    assert.deepEqual(census.executions.get(response.body.executionId), { attempt: 1, outcome: 1, other: 0 }, 'exactly one outcome');
    assert.equal(response.body.auditRecorded, undefined, 'the response says the outcome was lost, but the table has it');
  });
});
