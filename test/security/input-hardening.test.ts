/**
 * Hostile request bodies, one deterministic case each (the fuzz of
 * test/fuzz/properties.ts explores around them): deep nesting, prototype keys,
 * huge numbers, invalid UTF-8, and what a refused body leaves behind (nothing).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type TestStack } from '../support/stack.js';
import { countItems, sideEffectCommand } from './support.js';

const touch = sideEffectCommand();
let stack: TestStack;
let token: string;

before(async () => {
  stack = await startStack({ commands: { touch: touch.loader } });
  token = await stack.token();
});
after(() => stack.close());

const post = (command: string, body: string, headers: Record<string, string> = {}) =>
  stack.http({ path: `/__manage__/${command}`, token, body, headers: { 'content-type': 'application/json', ...headers } });

const pristine = () => {
  assert.deepEqual(Object.keys(Object.prototype), []);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
};

/** A 400 (either code), with nothing run and nothing audited. */
async function refusedAs400(command: string, body: string): Promise<{ code: string; message: string }> {
  const runs = touch.runs.length;
  const items = await countItems(stack.dynamo);
  const response = await post(command, body);
  assert.equal(response.status, 400, `status ${response.status}: ${response.raw.slice(0, 300)}`);
  assert.match(response.body.error.code, /^Invalid(Request|Arguments)$/);
  assert.equal(touch.runs.length, runs, 'the command did not run');
  assert.equal(await countItems(stack.dynamo), items, 'nothing was audited');
  pristine();
  return response.body.error;
}

describe('deep nesting', () => {
  it('deeply nested top-level bodies and dryRun values are a 400', async () => {
    for (const depth of [100, 5_000, 30_000]) {
      await refusedAs400('touch', '['.repeat(depth) + ']'.repeat(depth));
      await refusedAs400('touch', `{"dryRun":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    }
  });

  it('[BUG reproduction] deeply nested `data` (arrays or objects, under 64 KB) is a 400, not a 500', async () => {
    // TypeBox's Value.Clone recurses: about 2,500 levels overflow the stack → RangeError → 500 InternalError.
    for (const depth of [3_000, 10_000, 30_000]) {
      await refusedAs400('touch', `{"data":{"label":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
      await refusedAs400('touch', `{"data":{"label":${'{"a":'.repeat(depth / 5)}1${'}'.repeat(depth / 5)}}}`);
      await refusedAs400('touch', `{"data":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
    }
  });

  it('[BUG reproduction] deeply nested `data` in a direct invocation is InvalidArguments, not InternalError', async () => {
    let data: unknown = 1;
    for (let i = 0; i < 10_000; i++) data = [data];
    await assert.rejects(stack.invoke({ command: 'touch', data: { label: data } }), { name: 'InvalidArguments' });
  });
});

describe('prototype keys', () => {
  it('__proto__, constructor and prototype at the top level are a 400 and pollute nothing', async () => {
    for (const body of [
      '{"__proto__":{"polluted":"yes"}}',
      '{"data":{},"__proto__":{"isAdmin":true}}',
      '{"constructor":{"prototype":{"polluted":"yes"}}}',
      '{"data":{},"prototype":{"polluted":"yes"}}',
    ]) {
      await refusedAs400('touch', body);
    }
  });

  it('constructor / prototype / toString keys inside `data` are unknown arguments: 400', async () => {
    for (const body of [
      '{"data":{"constructor":{"prototype":{"polluted":"yes"}}}}',
      '{"data":{"prototype":{"polluted":"yes"}}}',
      '{"data":{"toString":"x"}}',
      '{"data":{"hasOwnProperty":1}}',
      '{"data":{"label":"x","constructor":{"name":"x"}}}',
    ]) {
      const error = await refusedAs400('touch', body);
      assert.equal(error.code, 'InvalidArguments');
    }
  });

  it('a __proto__ value inside `data` never reaches a prototype', async () => {
    for (const body of ['{"data":{"__proto__":{"polluted":"yes"}}}', '{"data":{"label":"x","__proto__":{"isAdmin":true}}}']) {
      const response = await post('touch', body);
      assert.notEqual(response.status, 500);
      pristine();
    }
  });

  it('[BUG reproduction] a __proto__ key inside `data` is refused like any unknown argument', async () => {
    // Value.Clone assigns the key, which sets the clone's prototype instead of copying it:
    // the key disappears before the strict schema (additionalProperties: false) sees it,
    // and its properties are then read through the prototype by the command.
    const error = await refusedAs400('touch', '{"data":{"label":"x","__proto__":{"isAdmin":true}}}');
    assert.equal(error.code, 'InvalidArguments');
    const smuggled = await refusedAs400('echo', '{"data":{"__proto__":{"message":"smuggled through the prototype"}}}');
    assert.equal(smuggled.code, 'InvalidArguments');
  });
});

describe('numbers and encodings', () => {
  it('huge, infinite and non-integer numbers are InvalidArguments', async () => {
    for (const n of ['1e999', '-1e999', '1e308', '123456789012345678901234567890', '1.5', '-0.5']) {
      const error = await refusedAs400('sleep', `{"data":{"ms":${n}}}`);
      assert.equal(error.code, 'InvalidArguments', n);
      await refusedAs400('echo', `{"data":{"message":"m","repeat":${n}}}`);
    }
  });

  it('invalid UTF-8 in a base64 body is InvalidRequest', async () => {
    for (const bytes of [[0x7b, 0xff, 0x7d], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const body = Buffer.concat([Buffer.from('{"data":{"label":"'), Buffer.from(bytes), Buffer.from('"}}')]);
      const runs = touch.runs.length;
      const response: any = await stack.handler(
        {
          version: '2.0',
          rawPath: '/__manage__/touch',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: body.toString('base64'),
          isBase64Encoded: true,
          requestContext: { http: { method: 'POST', sourceIp: '203.0.113.1' }, requestId: 'r' },
        } as never,
        { getRemainingTimeInMillis: () => 30_000 } as never,
      );
      assert.equal(response.statusCode, 400);
      assert.equal(JSON.parse(response.body).error.code, 'InvalidRequest');
      assert.equal(touch.runs.length, runs);
    }
  });

  it('a body with a BOM, with NUL bytes, or JSON with duplicate keys', async () => {
    // A leading BOM may be ignored (RFC 8259 §8.1); either way it is never a 5xx.
    assert.ok([200, 400].includes((await post('touch', '\ufeff{"data":{}}')).status));
    await refusedAs400('touch', '{"data":{}}\u0000');
    // Duplicate keys: JSON.parse keeps the last; the result must still be validated.
    const error = await refusedAs400('touch', '{"data":{"label":"ok"},"data":{"label":5}}');
    assert.equal(error.code, 'InvalidArguments');
  });
});
