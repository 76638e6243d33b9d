/**
 * The web console's server side (no browser): the page and assets with their
 * headers, its settings, and the page's argument checks against the server's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as Type from '@sinclair/typebox';
import fc from 'fast-check';
import { ConfigError, loadConfig } from '../../src/config.js';
import { InvalidArguments } from '../../src/errors.js';
import { validateArguments } from '../../src/validation.js';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip, contentSecurityPolicy } from '../../src/console/serve.js';
import { validate } from '../../console/validate.js';
import { httpEvent, lambdaContext, startStack, type HttpCall, type TestStack } from '../support/stack.js';
// @ts-expect-error a plain .mjs script without declarations
import { buildConsoleAssets, holdsAssets } from '../../scripts/build-console.mjs';

let stack: TestStack;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);
/** The handler's answer as is (stack.http parses JSON; the page is HTML). */
async function get(call: HttpCall, on: TestStack = stack): Promise<{ status: number; headers: Record<string, string>; raw: string; isBase64Encoded?: boolean }> {
  const response = await on.handler(httpEvent({ method: 'GET', ...call }), lambdaContext());
  return { status: (response as any).statusCode, headers: (response as any).headers, raw: (response as any).body, isBase64Encoded: (response as any).isBase64Encoded };
}
/** The same request as a REST API (v1) event, or an HTTP API payload 1.0 one (which says `version: '1.0'`). */
async function getV1(path: string, headers: Record<string, string>, options: { version?: '1.0'; method?: string } = {}) {
  const event = {
    ...(options.version ? { version: options.version } : {}),
    resource: '/__manage__/{proxy+}',
    path,
    httpMethod: options.method ?? 'GET',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: null,
    requestContext: { requestId: 'v1', stage: 'prod', identity: { sourceIp: '203.0.113.7', userAgent: 'node-test' } },
    body: null,
    isBase64Encoded: false,
  };
  return (await stack.handler(event, lambdaContext())) as { statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded?: boolean };
}
/** The page's two asset paths, with their versions. */
async function assetUrls(): Promise<{ js: { path: string; v: string }; css: { path: string; v: string } }> {
  const { raw } = await get({ path: '/__manage__/console' });
  const js = /src="([^"]+app\.js)\?v=([0-9a-f]+)"/.exec(raw)!;
  const css = /href="([^"]+app\.css)\?v=([0-9a-f]+)"/.exec(raw)!;
  return { js: { path: js[1]!, v: js[2]! }, css: { path: css[1]!, v: css[2]! } };
}
const consoleEnv = {
  MANAGE_CONSOLE_CLIENT_ID: 'mm-console',
  MANAGE_CONSOLE_RESOURCE: 'urn:middle-management:local',
  MANAGE_CONSOLE_AUTH_ORIGINS: 'https://login.example.com/some/path',
};
before(async () => {
  stack = await startStack({ env: consoleEnv });
});
after(() => stack.close());

describe('the console page', () => {
  it('is served without a token, with a strict CSP and no framing', async () => {
    const response = await get({ path: '/__manage__/console' });
    assert.equal(response.status, 200);
    assert.match(response.headers['content-type']!, /^text\/html/);
    const csp = response.headers['content-security-policy']!;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.ok(csp.includes(`connect-src 'self' ${new URL(stack.issuer.issuer).origin} https://login.example.com;`), csp);
    assert.ok(csp.includes(`form-action 'self' ${new URL(stack.issuer.issuer).origin} https://login.example.com;`), csp);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(response.headers['x-frame-options'], 'DENY');
    assert.equal(response.headers['referrer-policy'], 'no-referrer');
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.equal(response.headers['set-cookie'], undefined);
  });

  it('carries its settings as data attributes, with no inline script or style', async () => {
    const { raw } = await get({ path: '/__manage__/console' });
    const html = raw;
    assert.match(html, /data-client-id="mm-console"/);
    assert.ok(html.includes(`data-issuer="${stack.issuer.issuer}"`));
    assert.match(html, /data-resource="urn:middle-management:local"/);
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=/i);
  });

  it('serves its script and style, versioned URLs cached for good', async () => {
    const { raw } = await get({ path: '/__manage__/console' });
    const html = raw;
    const js = /src="([^"]+app\.js)\?v=([0-9a-f]+)"/.exec(html)!;
    const css = /href="([^"]+app\.css)\?v=([0-9a-f]+)"/.exec(html)!;
    const script = await get({ path: js[1]!, query: { v: js[2]! } });
    assert.equal(script.status, 200);
    assert.match(script.headers['content-type']!, /^text\/javascript/);
    assert.match(script.headers['cache-control']!, /immutable/);
    const style = await get({ path: css[1]! });
    assert.equal(style.status, 200);
    assert.match(style.headers['content-type']!, /^text\/css/);
    assert.equal(style.headers['cache-control'], 'no-cache');
  });

  it('answers a client that takes no gzip with the text, and says the answer varies with Accept-Encoding', async () => {
    const { js, css } = await assetUrls();
    for (const acceptEncoding of [undefined, 'identity', 'br', 'gzip;q=0', 'br, gzip;q=0, *;q=1', '*;q=0']) {
      const script = await get({ path: js.path, query: { v: js.v }, headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding } });
      assert.equal(script.status, 200);
      assert.equal(script.headers['content-encoding'], undefined, String(acceptEncoding));
      assert.equal(script.isBase64Encoded, undefined);
      assert.equal(script.headers.vary, 'accept-encoding');
      assert.match(script.raw, /sessionStorage/, 'the script itself');
      assert.equal(sha256(script.raw), js.v, 'the text the version names');
    }
    const style = await get({ path: css.path, query: { v: css.v } });
    assert.equal(style.headers.vary, 'accept-encoding');
    assert.equal(sha256(style.raw), css.v);
  });

  it('answers a client that takes gzip with the compressed bytes: content-encoding gzip, a base64 body, the same caching', async () => {
    const { js, css } = await assetUrls();
    for (const acceptEncoding of ['gzip, deflate, br, zstd', 'GZIP', 'br;q=1, gzip;q=0.5', 'x-gzip', '*', 'deflate, *;q=0.1']) {
      for (const asset of [js, css]) {
        for (const versioned of [true, false]) {
          const call = { path: asset.path, ...(versioned ? { query: { v: asset.v } } : {}) };
          const plain = await get(call);
          const zipped = await get({ ...call, headers: { 'accept-encoding': acceptEncoding } });
          assert.equal(zipped.status, 200);
          assert.equal(zipped.headers['content-encoding'], 'gzip', acceptEncoding);
          assert.equal(zipped.isBase64Encoded, true);
          assert.equal(zipped.headers.vary, 'accept-encoding');
          const { 'content-encoding': _encoding, ...headers } = zipped.headers;
          assert.deepEqual(headers, plain.headers, 'content type, caching (immutable when versioned, no-cache otherwise), security headers: as for the text');
          const text = gunzipSync(Buffer.from(zipped.raw, 'base64')).toString('utf8');
          assert.equal(text, plain.raw);
          assert.equal(sha256(text), asset.v, 'the version is the uncompressed text’s');
          assert.ok(Buffer.from(zipped.raw, 'base64').length < Buffer.byteLength(plain.raw) / 2, 'compressed');
        }
      }
    }
    // HEAD: the headers of the GET, no body.
    const head = await stack.handler(
      { version: '2.0', rawPath: js.path, headers: { 'accept-encoding': 'gzip' }, queryStringParameters: { v: js.v }, requestContext: { http: { method: 'HEAD', path: js.path } } },
      lambdaContext(),
    );
    assert.equal((head as any).statusCode, 200);
    assert.equal((head as any).body, '');
    assert.equal((head as any).headers['content-encoding'], 'gzip');
    assert.match((head as any).headers['cache-control'], /immutable/);
  });

  it('a REST API (v1) event gets the text even when gzip is accepted (its binary media types are unknown); an HTTP API 1.0 event gets gzip', async () => {
    const { js } = await assetUrls();
    const rest = await getV1(`/prod${js.path}`, { 'Accept-Encoding': 'gzip, deflate' });
    assert.equal(rest.statusCode, 200);
    assert.equal(rest.headers['content-encoding'], undefined);
    assert.equal(rest.isBase64Encoded, undefined);
    assert.equal(rest.headers.vary, 'accept-encoding');
    assert.equal(sha256(rest.body), js.v);
    const httpApi = await getV1(js.path, { 'accept-encoding': 'gzip' }, { version: '1.0' });
    assert.equal(httpApi.headers['content-encoding'], 'gzip');
    assert.equal(httpApi.isBase64Encoded, true);
    assert.equal(gunzipSync(Buffer.from(httpApi.body, 'base64')).toString('utf8'), rest.body);
    // The page itself is never compressed.
    const page = await getV1('/prod/__manage__/console', { 'accept-encoding': 'gzip' }, { version: '1.0' });
    assert.equal(page.headers['content-encoding'], undefined);
    assert.match(page.body, /^<!doctype html>/);
  });

  it('reads Accept-Encoding as RFC 9110 says (q-values, *, case)', () => {
    for (const header of ['gzip', 'GZip', 'deflate, gzip', 'gzip;q=0.001', 'gzip; q=1.0', 'x-gzip', '*', 'br, *;q=0.5', ' gzip ']) assert.ok(acceptsGzip(header), header);
    for (const header of [undefined, '', 'identity', 'br', 'deflate, br, zstd', 'gzip;q=0', 'gzip;q=0.000', '*;q=0', 'gzip;q=0, *', 'gzip;q=nope', 'gzipx']) assert.ok(!acceptsGzip(header), String(header));
  });

  it('works under an API Gateway stage path and answers HEAD without a body', async () => {
    const response = await get({ path: '/prod/__manage__/console' });
    assert.equal(response.status, 200);
    const html = response.raw;
    assert.match(html, /src="\/prod\/__manage__\/console\/app\.js\?v=/);
    const head = await stack.handler(
      { version: '2.0', rawPath: '/__manage__/console', headers: {}, requestContext: { http: { method: 'HEAD', path: '/__manage__/console' } } },
      { getRemainingTimeInMillis: () => 10_000 } as any,
    );
    assert.equal((head as any).statusCode, 200);
    assert.equal((head as any).body, '');
  });

  it('answers 404 under its path for anything else, and leaves the API as it was', async () => {
    assert.equal((await get({ path: '/__manage__/console/other.js' })).status, 404);
    // POST to /__manage__/console is a command run like any other: no token, 401.
    const post = await stack.http({ method: 'POST', path: '/__manage__/console', body: {} });
    assert.equal(post.status, 401);
    const api = await stack.http({ method: 'GET', path: '/__manage__' });
    assert.equal(api.status, 401);
  });

  it('keeps the API’s 404 and 405 around it, before any token', async () => {
    const call = (method: string, path: string) => stack.http({ method, path });
    // Other methods on the page's path are /__manage__/{command}'s: 405 Allow: POST, as before the console.
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const response = await call(method, '/__manage__/console');
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.allow, 'POST');
    }
    const asset = await call('POST', '/__manage__/console/app.js');
    assert.equal(asset.status, 405);
    assert.equal(asset.headers.allow, 'GET, HEAD');
    assert.equal((await call('GET', '/__manage__/consolex')).status, 405, 'another command’s path');
    assert.equal((await call('GET', '/__manage__/console/app.js/x')).status, 404);
    assert.equal((await call('GET', '/a/b/__manage__/console')).status, 404, 'at most one stage segment');
    // A doubled slash or an encoded segment is the same route, as for the API.
    assert.equal((await get({ path: '//__manage__//%63onsole' })).status, 200);
  });

  it('a request awaiting approval answers 202 with the console’s deep link for approvers', async () => {
    const s = stack.withEnv({ MANAGE_APPROVAL: JSON.stringify({ echo: ['approvers'] }) });
    const token = await s.token({ sub: 'alice' });
    const ask = (more: Partial<HttpCall>, on: TestStack = s) =>
      on.http({ path: '/__manage__/echo', token, body: { data: { message: 'hi' } }, ...more });
    const local = await ask({ headers: { host: 'localhost:3000' } });
    assert.equal(local.status, 202);
    assert.equal(local.body.status, 'awaiting_approval');
    assert.equal(local.body.approveUrl, `http://localhost:3000/__manage__/console#/executions/${local.body.executionId}`);
    assert.equal(local.headers.location, `/__manage__/executions/${local.body.executionId}`, 'Location as before');
    const staged = await ask({ path: '/prod/__manage__/echo', headers: { host: 'abc.execute-api.eu-west-1.amazonaws.com', 'x-forwarded-proto': 'https' } });
    assert.equal(staged.body.approveUrl, `https://abc.execute-api.eu-west-1.amazonaws.com/prod/__manage__/console#/executions/${staged.body.executionId}`);
    const configured = await ask({ headers: { host: 'evil.example' } }, s.withEnv({ MANAGE_CONSOLE_REDIRECT_URI: 'https://ops.example.com/__manage__/console?x=1' }));
    assert.equal(configured.body.approveUrl, `https://ops.example.com/__manage__/console#/executions/${configured.body.executionId}`, 'the configured console URL wins');
    const noConsole = await ask({ headers: { host: 'localhost:3000' } }, s.withEnv({ MANAGE_CONSOLE_CLIENT_ID: '' }));
    assert.equal(noConsole.status, 202);
    assert.equal('approveUrl' in noConsole.body, false, 'no console, no link');
    // A run that needs no approval has no link.
    const plain = await stack.http({ path: '/__manage__/echo', token, body: { data: { message: 'hi' } }, headers: { host: 'localhost:3000', prefer: 'respond-async' } });
    assert.equal('approveUrl' in plain.body, false);
  });

  it('without settings, says the console is not set up', async () => {
    const bare = stack.withEnv({ MANAGE_CONSOLE_CLIENT_ID: '' });
    const response = await get({ path: '/__manage__/console' }, bare);
    assert.equal(response.status, 200);
    assert.doesNotMatch(response.raw, /data-client-id/);
    assert.match(response.headers['content-security-policy']!, /connect-src 'self';/);
  });

  it('the commands list says which arguments are sensitive and which commands have a dry run', async () => {
    const token = await stack.token();
    const { body } = await stack.http({ method: 'GET', path: '/__manage__', token });
    const echo = body.commands.find((c: any) => c.name === 'echo');
    assert.deepEqual(echo.sensitive, ['secret']);
    assert.equal(echo.dryRun, true);
    assert.equal(body.commands.find((c: any) => c.name === 'fail').dryRun, false);
  });

  it('an approver reads the request waiting for their group (the console’s deep link), and what they decided', async () => {
    const s = stack.withEnv({ MANAGE_APPROVAL: JSON.stringify({ echo: ['approvers'] }) });
    const [alice, bob, carol] = await Promise.all([
      s.token({ sub: 'alice' }),
      s.token({ sub: 'bob', groups: ['approvers'] }),
      s.token({ sub: 'carol', groups: ['ops'] }),
    ]);
    const asked = await s.http({ path: '/__manage__/echo', token: alice, body: { data: { message: 'hi' } } });
    assert.equal(asked.status, 202);
    const path = `/__manage__/executions/${asked.body.executionId}`;
    const read = (token: string) => s.http({ method: 'GET', path, token });
    assert.equal((await read(bob)).body.status, 'awaiting_approval');
    assert.equal((await read(carol)).status, 404, 'not an approver: as unknown as a missing execution');
    const digest = (await read(bob)).body.planDigest;
    assert.equal((await s.http({ path: `${path}/approve`, token: bob, body: { planDigest: digest } })).status, 200);
    assert.equal((await read(bob)).body.status, 'succeeded', 'the approver still reads what he approved');
    assert.equal((await read(carol)).status, 404);
    // Another approver, who did not decide, no longer reads it once decided.
    assert.equal((await read(await s.token({ sub: 'dave', groups: ['approvers'] }))).status, 404);
  });

  it('the page’s TypeScript type-checks (console/tsconfig.json: DOM, not Node)', () => {
    const tsc = spawnSync(process.execPath, [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', fileURLToPath(new URL('../../console', import.meta.url))], { encoding: 'utf8' });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  });

  it('API requests never load the console: the library reaches its module by a dynamic import only', async () => {
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [fileURLToPath(new URL('../../src/index.ts', import.meta.url))],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      packages: 'external',
      write: false,
      metafile: true,
      outdir: '/tmp/mm-console-split',
      logLevel: 'silent',
    });
    const outputs = out.metafile.outputs;
    const chunkOf = (input: string) => Object.keys(outputs).find((name) => Object.keys(outputs[name]!.inputs).some((file) => file.endsWith(input)))!;
    const consoleChunk = chunkOf('src/console/serve.ts');
    const entry = Object.keys(outputs).find((name) => outputs[name]!.entryPoint?.endsWith('src/index.ts'))!;
    assert.notEqual(consoleChunk, entry, 'the console is a chunk of its own');
    assert.ok(Object.keys(outputs[consoleChunk]!.inputs).some((file) => file.endsWith('src/console/assets.ts')), 'with its assets');
    // Every static import from the entry, transitively: never the console's chunk.
    const reached = new Set<string>([entry]);
    for (const name of reached) for (const edge of outputs[name]!.imports) if (edge.kind === 'import-statement' && !edge.external) reached.add(edge.path);
    assert.ok(!reached.has(consoleChunk), 'loaded with the library');
    assert.ok([...reached].some((name) => outputs[name]!.imports.some((edge) => edge.kind === 'dynamic-import' && edge.path === consoleChunk)));
    // Nor node:zlib (the console's gunzip, for clients without gzip): loading it costs ≈ 5 ms at every cold start.
    const staticExternals = new Set([...reached].flatMap((name) => outputs[name]!.imports.filter((edge) => edge.external && edge.kind === 'import-statement').map((edge) => edge.path)));
    assert.ok(staticExternals.has('node:http'), 'externals are seen');
    assert.ok(!staticExternals.has('node:zlib') && !staticExternals.has('zlib'), [...staticExternals].join(', '));
  });

  it('the bundled assets are built from console/ as committed (compared decompressed: another zlib may choose other bytes)', async () => {
    const built = await buildConsoleAssets();
    const committed = readFileSync(new URL('../../src/console/assets.ts', import.meta.url), 'utf8');
    assert.ok(holdsAssets(committed, built), 'run node scripts/build-console.mjs');
    assert.ok(holdsAssets(built.source, built));
    assert.ok(!holdsAssets(built.source, { ...built, css: `${built.css} ` }), 'a changed style is seen');
    // Stored compressed: the generated module weighs less than half of the text it serves.
    assert.ok(committed.length < (Buffer.byteLength(built.js) + Buffer.byteLength(built.css)) / 2, `${committed.length} B`);
  });
});

describe('console settings', () => {
  const base = { MANAGE_ALLOW_LIST: 'echo', MANAGE_JWT_ISSUER: 'https://login.example.com', MANAGE_JWT_AUDIENCE: 'api', MANAGE_AUDIT_TABLE: 't' };
  it('default to the OIDC issuer, scope openid and the access token', () => {
    const config = loadConfig({ ...base, MANAGE_CONSOLE_CLIENT_ID: 'web' }, ['echo']);
    assert.deepEqual(config.console, { clientId: 'web', issuer: 'https://login.example.com', scopes: 'openid', tokenUse: 'access', authOrigins: [] });
  });
  it('default to the first issuer of MANAGE_JWT_ISSUERS when there is no MANAGE_JWT_ISSUER', () => {
    const issuers = JSON.stringify([{ issuer: 'https://a.example.com', audience: 'api' }, { issuer: 'https://b.example.com', audience: 'api' }]);
    const config = loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_AUDIT_TABLE: 't', MANAGE_JWT_ISSUERS: issuers, MANAGE_CONSOLE_CLIENT_ID: 'web' }, ['echo']);
    assert.equal(config.console?.issuer, 'https://a.example.com');
    const chosen = loadConfig({ MANAGE_ALLOW_LIST: 'echo', MANAGE_AUDIT_TABLE: 't', MANAGE_JWT_ISSUERS: issuers, MANAGE_CONSOLE_CLIENT_ID: 'web', MANAGE_CONSOLE_ISSUER: 'https://b.example.com' }, ['echo']);
    assert.equal(chosen.console?.issuer, 'https://b.example.com');
  });
  it('use the Cognito pool as issuer when no OIDC issuer is set', () => {
    const config = loadConfig(
      { MANAGE_ALLOW_LIST: 'echo', MANAGE_AUDIT_TABLE: 't', MANAGE_COGNITO_USER_POOL_ID: 'eu-west-1_AbC', MANAGE_COGNITO_CLIENT_ID: 'web', MANAGE_CONSOLE_CLIENT_ID: 'web', MANAGE_CONSOLE_AUTH_ORIGINS: 'https://mm.auth.eu-west-1.amazoncognito.com' },
      ['echo'],
    );
    assert.equal(config.console?.issuer, 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC');
    assert.match(contentSecurityPolicy(config.console), /connect-src 'self' https:\/\/cognito-idp\.eu-west-1\.amazonaws\.com https:\/\/mm\.auth\.eu-west-1\.amazoncognito\.com;/);
  });
  it('fail naming the variable', () => {
    for (const [name, value] of [
      ['MANAGE_CONSOLE_TOKEN_USE', 'refresh'],
      ['MANAGE_CONSOLE_REDIRECT_URI', 'not a url'],
      ['MANAGE_CONSOLE_ISSUER', 'ftp://x'],
      ['MANAGE_CONSOLE_AUTH_ORIGINS', 'nope'],
    ] as const) {
      assert.throws(
        () => loadConfig({ ...base, MANAGE_CONSOLE_CLIENT_ID: 'web', [name]: value }, ['echo']),
        (error: unknown) => error instanceof ConfigError && error.variable === name,
        name,
      );
    }
  });
});

describe('the page checks arguments with the server’s words', () => {
  const schemas = {
    echo: Type.Object(
      {
        message: Type.String({ maxLength: 12 }),
        repeat: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, default: 1 })),
        secret: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    rich: Type.Object(
      {
        name: Type.String({ minLength: 2, maxLength: 5, pattern: '^[a-z]+$' }),
        ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
        step: Type.Optional(Type.Integer({ multipleOf: 5, exclusiveMaximum: 100 })),
        force: Type.Optional(Type.Boolean({ default: false })),
        mode: Type.Optional(Type.Union([Type.Literal('fast'), Type.Literal('safe')])),
        one: Type.Optional(Type.Literal(1)),
        tags: Type.Optional(Type.Array(Type.String({ maxLength: 3 }), { minItems: 1, maxItems: 2, uniqueItems: true })),
        nested: Type.Optional(Type.Object({ a: Type.Integer() }, { additionalProperties: false })),
        nothing: Type.Optional(Type.Null()),
      },
      { additionalProperties: false },
    ),
  };
  const serverIssues = (schema: any, data: Record<string, unknown>) => {
    try {
      validateArguments(schema, data);
      return [];
    } catch (error) {
      if (error instanceof InvalidArguments) return error.issues;
      throw error;
    }
  };
  /** The schema as the page receives it: JSON, without TypeBox's symbols. */
  const wire = (schema: unknown) => JSON.parse(JSON.stringify(schema));

  const value = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom('fast', 'safe', 'ab', 'abc', 'ABC', '', 'toolongvalue!'),
    fc.integer({ min: -20, max: 120 }),
    fc.double({ min: -2, max: 2, noNaN: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.constantFrom('a', 'bb', 'cccc', 'a'), { maxLength: 3 }),
    fc.record({ a: fc.oneof(fc.integer(), fc.string()) }, { requiredKeys: [] }),
  );

  for (const [name, schema] of Object.entries(schemas)) {
    it(`${name}: same issues as the server for any data`, () => {
      const keys = [...Object.keys(schema.properties), 'extra'];
      fc.assert(
        fc.property(fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 6 }), (data) => {
          assert.deepEqual(validate(wire(schema), data), serverIssues(schema, data));
        }),
        { numRuns: 400 },
      );
    });
  }
});
