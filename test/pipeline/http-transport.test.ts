/**
 * The HTTP transport's order of checks (CONTRACT §2) through the handler:
 * route (404/405) → token (401) → body (413/415/400), whatever else is wrong
 * with the request; and the routing that middy's router does for it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Unauthorized } from '../../src/errors.js';
import { createManageHandler } from '../../src/handler/create.js';
import { resolveRoute, routingPath } from '../../src/handler/http-routes.js';
import { MemoryAuditStore } from '../../src/stores/audit/memory.js';
import { MemoryStateStore } from '../../src/stores/state/store.js';
import { commands, config, user } from './support.js';

const TOKEN = 'aaa.bbb.ccc';
let verified = 0;
const handler = createManageHandler(config({ MANAGE_MAX_BODY_BYTES: '64' }), {
  commands,
  audit: new MemoryAuditStore(),
  state: new MemoryStateStore(),
  verifier: {
    verify: async (token) => {
      verified++;
      if (token !== TOKEN) throw new Unauthorized();
      return user('alice') as never;
    },
  },
  logger: { log: () => undefined },
});

async function call(method: string, path: string, options: { headers?: Record<string, string>; body?: string; base64?: boolean } = {}) {
  const response = (await handler(
    {
      version: '2.0',
      rawPath: path,
      headers: options.headers ?? {},
      requestContext: { http: { method, path, sourceIp: '192.0.2.1' }, requestId: 'r' },
      ...(options.body !== undefined ? { body: options.body, isBase64Encoded: Boolean(options.base64) } : {}),
    },
    { getRemainingTimeInMillis: () => 60_000 } as never,
  )) as { statusCode: number; headers: Record<string, string>; body: string };
  return { status: response.statusCode, headers: response.headers, code: JSON.parse(response.body).error?.code as string | undefined };
}

const auth = { authorization: `Bearer ${TOKEN}` };
const big = JSON.stringify({ data: { label: 'x'.repeat(100) } });

describe('HTTP order of checks', () => {
  it('404 and 405 come before the token, and the token before the body', async () => {
    const before = verified;
    const nowhere = await call('GET', '/nowhere', { body: big });
    assert.deepEqual([nowhere.status, nowhere.code], [404, 'NotFound']);
    const wrong = await call('PUT', '/__manage__/touch', { body: big, headers: { 'content-type': 'text/plain' } });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'POST');
    const noToken = await call('POST', '/__manage__/touch', { body: big, headers: { 'content-type': 'text/plain' } });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers['www-authenticate'], 'Bearer');
    assert.equal(verified, before, 'no verification without one bearer token');
    assert.equal((await call('POST', '/__manage__/touch', { headers: { Authorization: `Bearer ${TOKEN}`, authorization: `Bearer ${TOKEN}` } })).status, 401);
    assert.equal((await call('POST', '/__manage__/hidden', { headers: { authorization: 'Bearer x.y.z' }, body: big })).status, 401);
  });

  it('after the token: 413 over the limit, then 415, then 400', async () => {
    assert.equal((await call('POST', '/__manage__/touch', { headers: { ...auth, 'content-type': 'text/plain' }, body: big })).code, 'PayloadTooLarge');
    assert.equal((await call('POST', '/__manage__/touch', { headers: { ...auth, 'content-type': 'text/plain' }, body: '{}' })).code, 'UnsupportedMediaType');
    assert.equal((await call('POST', '/__manage__/touch', { headers: { ...auth, 'Content-Type': 'Application/JSON' }, body: '{nope' })).code, 'InvalidRequest');
    assert.equal((await call('POST', '/__manage__/touch', { headers: auth, body: Buffer.from([0x7b, 0xff, 0x7d]).toString('base64'), base64: true })).code, 'InvalidRequest');
    assert.equal((await call('POST', '/__manage__/touch', { headers: auth, body: '  ' })).code, 'InvalidArguments', 'blank is {}');
    assert.equal((await call('POST', '/__manage__/touch', { headers: auth, body: '{"data":{"label":"ok"}}' })).status, 200);
    assert.equal((await call('POST', '/__manage__/hidden', { headers: auth, body: '{}' })).code, 'CommandNotAllowed');
  });
});

describe('HTTP routes (middy router, wrapped)', () => {
  it('routes by a canonical path: a stage before the base, doubled slashes, encoded segments', () => {
    assert.deepEqual(resolveRoute('POST', '/dev/__manage__/touch'), { kind: 'run', command: 'touch' });
    assert.deepEqual(resolveRoute('POST', '//__manage__//%74ouch/'), { kind: 'run', command: 'touch' });
    assert.deepEqual(resolveRoute('POST', '/__manage__/a%2Fb'), { kind: 'run', command: 'a/b' });
    assert.deepEqual(resolveRoute('GET', '/__manage__/%65xecutions'), { kind: 'listExecutions' });
    assert.deepEqual(resolveRoute('GET', '/__manage__/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV'), { kind: 'getExecution', executionId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' });
    assert.deepEqual(resolveRoute('POST', '/__manage__/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV/reject'), {
      kind: 'decide',
      executionId: '01ARZ3NDEKTSV4RRFFQ69G5FAV',
      decision: 'rejected',
    });
    assert.equal(routingPath('/a/b/__manage__/x'), '/');
  });

  it('405 with Allow for any other method, known to the router or not; 404 for an impossible id', () => {
    const allow = (method: string, path: string) => {
      try {
        resolveRoute(method, path);
        return 'routed';
      } catch (error) {
        return `${(error as Error).name} ${(error as { allow?: string[] }).allow?.join() ?? ''}`.trim();
      }
    };
    assert.equal(allow('DELETE', '/__manage__'), 'MethodNotAllowed GET');
    assert.equal(allow('TRACE', '/__manage__/audit/verify'), 'MethodNotAllowed GET');
    assert.equal(allow('', '/__manage__/touch'), 'MethodNotAllowed POST');
    assert.equal(allow('PUT', '/__manage__/executions'), 'MethodNotAllowed POST');
    assert.equal(allow('POST', '/__manage__/executions'), 'routed');
    assert.equal(allow('GET', '/__manage__/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV/approve'), 'MethodNotAllowed POST');
    assert.equal(allow('POST', '/__manage__/executions/not%20an%20id'), 'NotFound');
    assert.equal(allow('GET', '/__manage__/a/b/c/d'), 'NotFound');
  });
});
