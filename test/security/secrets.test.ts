/**
 * Secrets (issue 6): run a mix of requests — echo with a `secret`, dry runs,
 * failures, timeouts, refusals, bad tokens, reads of the audit, a lost outcome
 * write, direct invocations — then scan every log line, every response (body
 * and headers) and every audit item for the secret values and for every bearer
 * token used, whole or in part (its signature).
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from 'jose';
import { startStack, type HttpCall, type TestStack } from '../support/stack.js';
import { faultyStore } from '../faults/support.js';
import { scanItems } from './support.js';

let stack: TestStack;
before(async () => {
  stack = await startStack();
});
after(() => stack.close());

/** Secrets of several shapes: JSON-escaped characters, unicode, and one too short to scrub from free text. */
const SECRETS = ['hunter2-Correct-Horse-Battery', 'p@ss"w\\rd/ünï<script>', 'sk_live_51H9xQ2eZvKYlo2C', 'q7~'];

const seen: { responses: string[]; tokens: string[] } = { responses: [], tokens: [] };

async function call(target: TestStack, request: HttpCall) {
  if (request.token) seen.tokens.push(request.token);
  const authorization = request.headers?.authorization;
  if (authorization) seen.tokens.push(authorization.replace(/^Bearer\s+/i, ''));
  const response = await target.http(request);
  seen.responses.push(`${response.status} ${JSON.stringify(response.headers)} ${response.raw}`);
  return response;
}

it('no secret argument and no bearer token appears in any log line, response or audit item', { timeout: 30_000 }, async () => {
  const token = await stack.token({ username: 'secret-keeper' });
  const other = await stack.token({ sub: 'bob' });
  const auditors = stack.withEnv({ MANAGE_AUDITOR_GROUPS: 'audit', MANAGE_HTTP_TIME_LIMIT_MS: '150' });
  const auditor = await stack.token({ sub: 'carol', groups: ['audit'] });
  const lostOutcome = stack.withEnv({}, { audit: faultyStore(stack.audit, (kind) => (kind === 'outcome' ? new Error('outcome write failed') : undefined)) });
  const stacks = [stack, auditors, lostOutcome];
  const executions: string[] = [];

  for (const secret of SECRETS) {
    // A value shorter than 4 characters is redacted from the arguments but, by design, not
    // scrubbed from free text (src/redact.ts MIN_SCRUB_LENGTH): messages carry it only when longer.
    const echoed = secret.length >= 4 ? secret : 'short';
    const runs: HttpCall[] = [
      // Succeeds; the secret is redacted from the arguments.
      { path: '/__manage__/echo', token, body: { data: { message: 'public text', secret } } },
      // The command echoes the secret back by mistake: scrubbed from result and output.
      ...(secret.length >= 4 ? [{ path: '/__manage__/echo', token, body: { data: { message: `leak ${secret} leak`, secret, repeat: 3 } } }] : []),
      // A dry run.
      { path: '/__manage__/echo', token, body: { data: { message: 'plan', secret }, dryRun: true } },
      // Invalid arguments beside the secret: the error lists fields, not values.
      { path: '/__manage__/echo', token, body: { data: { message: 'x', secret, repeat: 99, [`${secret.slice(0, 2)}-extra`]: secret } } },
      { path: '/__manage__/echo', token, body: { data: { message: 7, secret } } },
      // Wrong type of secret.
      { path: '/__manage__/echo', token, body: { data: { message: 'x', secret: { nested: secret } } } },
      // Refused before the body is read: bad token, no token, not allowed, wrong method.
      { path: '/__manage__/echo', token: `${token.slice(0, -4)}AAAA`, body: { data: { message: 'x', secret } } },
      { path: '/__manage__/echo', body: { data: { message: 'x', secret } } },
      { path: '/__manage__/not-a-command', token, body: { data: { message: 'x', secret } } },
      { method: 'GET', path: '/__manage__/echo', token, body: { data: { message: 'x', secret } } },
      // Not JSON / too large / not UTF-8 safe.
      { path: '/__manage__/echo', token, body: `{"data":{"message":"x","secret":"${secret}"`, headers: { 'content-type': 'application/json' } },
      { path: '/__manage__/echo', token, body: JSON.stringify({ data: { message: 'x', secret } }), headers: { 'content-type': 'text/plain' } },
    ];
    for (const request of runs) {
      const response = await call(stack, request);
      if (response.body?.executionId) executions.push(response.body.executionId);
    }
    // The outcome write fails: the attempt stays, the response says so.
    const lost = await call(lostOutcome, { path: '/__manage__/echo', token, body: { data: { message: `lost ${echoed}`, secret } } });
    assert.equal(lost.body.auditRecorded, false);
    executions.push(lost.body.executionId);
    // Direct invocation.
    const invoked = await stack.invoke({ command: 'echo', data: { message: `invoked ${echoed}`, secret }, actor: 'sfn:secrets' });
    seen.responses.push(JSON.stringify(invoked));
    executions.push(invoked.executionId);
    await stack.invoke({ command: 'echo', data: { message: 'x', secret, repeat: 0 } }).catch((error: Error) => seen.responses.push(`${error.name} ${error.message}`));
  }

  // Failures, timeouts, and bad tokens of every kind.
  await call(stack, { path: '/__manage__/fail', token, body: { data: { message: 'disk full' } } });
  await call(auditors, { path: '/__manage__/sleep', token, body: { data: { ms: 5000 } } });
  const { privateKey } = await generateKeyPair('RS256');
  for (const bad of [
    await stack.issuer.sign({ exp: Math.floor(Date.now() / 1000) - 60 }),
    await stack.issuer.sign({}, { privateKey: privateKey as never }),
    await stack.issuer.sign({ aud: 'other' }),
    await stack.issuer.sign({}, { kid: 'unknown-kid' }),
  ]) {
    await call(stack, { path: '/__manage__/echo', token: bad, body: { data: { message: 'x', secret: SECRETS[0] } } });
  }
  await call(stack, { path: '/__manage__/echo', headers: { authorization: `Bearer ${token}, Bearer ${other}` }, body: {} });

  // Reading the audit back: one record, own list, the auditor's list.
  for (const id of executions) {
    await call(stack, { method: 'GET', path: `/__manage__/executions/${id}`, token });
    await call(auditors, { method: 'GET', path: `/__manage__/executions/${id}`, token: auditor });
  }
  await call(stack, { method: 'GET', path: '/__manage__/executions', token, query: { limit: '100' } });
  await call(auditors, { method: 'GET', path: '/__manage__/executions', token: auditor, query: { limit: '100' } });
  await call(stack, { method: 'GET', path: '/__manage__', token });

  const logs = stacks.flatMap((s) => s.logs);
  const items = (await scanItems(stack.dynamo)).map((item) => JSON.stringify(item));
  assert.ok(logs.length > 20 && items.length > 20 && seen.responses.length > 50, 'the scan has material');
  assert.ok(executions.length >= SECRETS.length * 3);

  const haystacks: [string, string[]][] = [
    ['log line', logs],
    ['response', seen.responses],
    ['audit item', items],
  ];
  const needles = new Set<string>();
  for (const secret of SECRETS) {
    needles.add(secret);
    needles.add(JSON.stringify(secret).slice(1, -1)); // as it would look inside JSON
    if (secret.length >= 8) needles.add(Buffer.from(secret).toString('base64').slice(0, 12));
  }
  for (const token of new Set(seen.tokens)) {
    needles.add(token);
    const signature = token.split('.')[2];
    if (signature && signature.length >= 16) needles.add(signature);
  }
  const leaks: string[] = [];
  for (const needle of needles) {
    for (const [where, texts] of haystacks) {
      const hit = texts.find((text) => text.includes(needle));
      if (hit) leaks.push(`${JSON.stringify(needle.slice(0, 24))} in a ${where}: ${hit.slice(0, 200)}`);
    }
  }
  assert.deepEqual(leaks, []);

  // And the redaction is visible where the secret would have been.
  const record = await stack.audit.getExecution(executions[0]!);
  assert.equal(record?.args.secret, '[REDACTED]');
});
