/** The CLI's pure parts: argument coercion, schema checks, precedence, exit codes, token expiry, redaction. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkData, coerce, parseAssignments, typeLabel } from '../../cli/schema.js';
import { checkUrl, configDir, resolveProfile, resolveUrl, type ConfigFile } from '../../cli/config.js';
import { CliError, Exit, exitCodeFor, exitCodeForStatus } from '../../cli/errors.js';
import { EXPIRY_MARGIN_MS, expiryOf, isFresh, subjectOf } from '../../cli/auth/cache.js';
import { redact, registerSecret } from '../../cli/io.js';
import { parseSeconds, parseSince } from '../../cli/commands/parse.js';
import { describeToken, inspectToken, unusableReason } from '../../cli/auth/inspect.js';
import { resourceList } from '../../cli/auth/oauth.js';
import { configuredEndpoint, cognitoEndpoint } from '../../cli/auth/cognito.js';

const T = { timeout: 5_000 };

const schema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 2, pattern: '^[a-z]+$' },
    count: { type: 'integer', minimum: 1, maximum: 5 },
    ratio: { type: 'number', exclusiveMaximum: 1 },
    force: { type: 'boolean' },
    ids: { type: 'array', items: { type: 'integer' }, maxItems: 3 },
    tags: { type: 'array', items: { type: 'string' } },
    level: { anyOf: [{ const: 'low' }, { const: 'high' }] },
    size: { type: ['integer', 'string'] },
    either: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
    nothing: { type: 'null' },
    filter: { type: 'object' },
    color: { enum: ['red', 'green'] },
    anything: {},
  },
  additionalProperties: false,
};

describe('key=value coercion from the JSON Schema', () => {
  test('each type', T, () => {
    const { data, issues } = parseAssignments(
      ['name=abc', 'count=3', 'ratio=0.25', 'force=no', 'ids=1, 2,3', 'tags=a,b', 'level=high', 'size=12', 'either=12', 'nothing=null', 'filter={"a":[1]}', 'color=red', 'anything=42'],
      schema,
    );
    assert.deepEqual(issues, []);
    assert.deepEqual(data, {
      name: 'abc',
      count: 3,
      ratio: 0.25,
      force: false,
      ids: [1, 2, 3],
      tags: ['a', 'b'],
      level: 'high',
      size: 12,
      either: 12,
      nothing: null,
      filter: { a: [1] },
      color: 'red',
      anything: '42',
    });
  });

  test('booleans, arrays in JSON, repeated array keys, empty values, := JSON', T, () => {
    for (const [raw, value] of [['true', true], ['YES', true], ['on', true], ['1', true], ['false', false], ['off', false], ['0', false]] as const) {
      assert.deepEqual(coerce(raw, { type: 'boolean' }), { value });
    }
    assert.deepEqual(parseAssignments(['ids=[1,2]'], schema).data, { ids: [1, 2] });
    assert.deepEqual(parseAssignments(['tags=a', 'tags=b,c'], schema).data, { tags: ['a', 'b', 'c'] });
    assert.deepEqual(parseAssignments(['tags='], schema).data, { tags: [] });
    assert.deepEqual(parseAssignments(['anything='], schema).data, { anything: '' });
    assert.match(parseAssignments(['name='], schema).issues[0]!.message, /at least 2 characters/);
    assert.deepEqual(parseAssignments(['size:="12"', 'anything:={"x":true}', 'tags=a=b'], schema).data, { size: '12', anything: { x: true }, tags: ['a=b'] });
    assert.deepEqual(parseAssignments(['size=big'], schema).data, { size: 'big' });
  });

  test('bad values and unknown keys are issues with JSON pointers', T, () => {
    const cases: [string[], string, RegExp][] = [
      [['count=three'], '/count', /count must be an integer, got "three"/],
      [['count=9'], '/count', /count must be ≤ 5, got 9/],
      [['count=1.5'], '/count', /must be an integer/],
      [['ratio=1'], '/ratio', /ratio must be < 1/],
      [['ratio=abc'], '/ratio', /must be a number/],
      [['force=maybe'], '/force', /force must be true or false/],
      [['ids=1,x'], '/ids', /ids\.1 must be an integer, got "x"/],
      [['ids=1,2,3,4'], '/ids', /at most 3 items/],
      [['ids=[1'], '/ids', /JSON array or comma-separated/],
      [['level=medium'], '/level', /does not match any allowed form \("low" \| "high"\)/],
      [['color=blue'], '/color', /must be one of "red", "green"/],
      [['filter=[1]'], '/filter', /must be a JSON object/],
      [['nothing=x'], '/nothing', /must be null/],
      [['nmae=x'], '/nmae', /unknown argument nmae \(did you mean name\?\)/],
      [['count=1', 'count=2'], '/count', /given more than once/],
      [['anything:=nope'], '/anything', /needs a JSON value/],
      [['=x'], '', /is not key=value/],
      [['plain'], '', /is not key=value/],
    ];
    for (const [words, path, message] of cases) {
      const { issues } = parseAssignments(words, schema);
      assert.equal(issues.length, 1, `${words.join(' ')} → ${JSON.stringify(issues)}`);
      assert.equal(issues[0]!.path, path, words.join(' '));
      assert.match(issues[0]!.message, message, words.join(' '));
    }
  });

  test('checkData: required, unknown keys, types of --data-json values, nested items, string rules', T, () => {
    assert.deepEqual(checkData({ name: 'ok' }, schema), []);
    assert.match(checkData({}, schema)[0]!.message, /missing required argument name \(string\)/);
    assert.match(checkData({ name: 'ok', extra: 1 }, schema)[0]!.message, /unknown argument extra/);
    assert.match(checkData({ name: 'ok', count: '3' }, schema)[0]!.message, /count must be an integer, got "3"/);
    assert.match(checkData({ name: 'ok', ids: [1, 'x'] }, schema)[0]!.message, /ids\.1 must be an integer/);
    assert.match(checkData({ name: 'a' }, schema)[0]!.message, /at least 2 characters/);
    assert.match(checkData({ name: 'ABC' }, schema)[0]!.message, /must match/);
    // A schema that allows more keys, or none at all, lets them through.
    assert.deepEqual(checkData({ any: 1 }, { type: 'object', properties: {} }), []);
    assert.deepEqual(checkData({ any: 1 }, undefined), []);
    assert.deepEqual(parseAssignments(['free=1'], { type: 'object', additionalProperties: { type: 'integer' } }).data, { free: 1 });
    assert.match(parseAssignments(['x=1'], { type: 'object', properties: {}, additionalProperties: false }).issues[0]!.message, /takes no arguments/);
  });

  test('type labels for mm commands', T, () => {
    assert.equal(typeLabel(schema.properties.ids), 'integer[]');
    assert.equal(typeLabel(schema.properties.level), '"low" | "high"');
    assert.equal(typeLabel(schema.properties.size), 'integer | string');
    assert.equal(typeLabel({}), '');
  });
});

describe('profiles and URLs', () => {
  const config: ConfigFile = {
    defaultProfile: 'dev',
    profiles: { dev: { url: 'https://dev.example.com' }, prod: { url: 'https://prod.example.com/', confirm: true }, default: { url: 'https://d.example' } },
  };

  test('--profile, then MM_PROFILE, then defaultProfile, then "default"', T, () => {
    assert.equal(resolveProfile(config, 'prod', { MM_PROFILE: 'dev' }).name, 'prod');
    assert.equal(resolveProfile(config, undefined, { MM_PROFILE: 'prod' }).name, 'prod');
    assert.equal(resolveProfile(config, undefined, {}).name, 'dev');
    assert.equal(resolveProfile({ profiles: config.profiles }, undefined, {}).name, 'default');
    assert.equal(resolveProfile({ profiles: {} }, undefined, {}).name, undefined);
    assert.throws(() => resolveProfile(config, 'nope', {}), (e: CliError) => e.exitCode === Exit.Usage && /profiles: dev, prod, default/.test(e.message));
    assert.throws(() => resolveProfile(config, '__proto__', {}), (e: CliError) => e.exitCode === Exit.Usage);
  });

  test('--url, then MM_URL, then the profile; http only to loopback', T, () => {
    const profile = config.profiles.prod!;
    assert.equal(resolveUrl('https://flag.example', { MM_URL: 'https://env.example' }, profile), 'https://flag.example');
    assert.equal(resolveUrl(undefined, { MM_URL: 'https://env.example' }, profile), 'https://env.example');
    assert.equal(resolveUrl(undefined, {}, profile), 'https://prod.example.com');
    assert.throws(() => resolveUrl(undefined, {}, {}), (e: CliError) => e.exitCode === Exit.Usage);
    assert.equal(checkUrl('http://localhost:3000/', 'x', {}), 'http://localhost:3000');
    assert.equal(checkUrl('http://127.0.0.1:3000', 'x', {}), 'http://127.0.0.1:3000');
    assert.equal(checkUrl('http://[::1]:3000', 'x', {}), 'http://[::1]:3000');
    assert.throws(() => checkUrl('http://api.example.com', 'x', {}), /plain HTTP/);
    assert.equal(checkUrl('http://api.example.com', 'x', { MM_INSECURE_HTTP: '1' }), 'http://api.example.com');
    assert.throws(() => checkUrl('ftp://x', 'x', {}), /https/);
    assert.throws(() => checkUrl('not a url', 'x', {}), /not a URL/);
  });

  test('config directory: MM_CONFIG_DIR, then XDG_CONFIG_HOME, then ~/.config', T, () => {
    assert.equal(configDir({ MM_CONFIG_DIR: '/x/mm', XDG_CONFIG_HOME: '/xdg' }), '/x/mm');
    assert.equal(configDir({ XDG_CONFIG_HOME: '/xdg' }), '/xdg/middle-management');
    assert.match(configDir({}), /\/\.config\/middle-management$/);
  });
});

describe('exit codes', () => {
  test('by error code, then by status', T, () => {
    const table: [number, string | undefined, number][] = [
      [500, 'CommandFailed', 1],
      [400, 'InvalidRequest', 2],
      [400, 'InvalidArguments', 2],
      [413, 'PayloadTooLarge', 2],
      [415, 'UnsupportedMediaType', 2],
      [404, 'NotFound', 2],
      [405, 'MethodNotAllowed', 2],
      [401, 'Unauthorized', 3],
      [401, undefined, 3],
      [403, 'Forbidden', 4],
      [403, 'CommandNotAllowed', 4],
      [403, undefined, 4],
      [504, 'CommandTimedOut', 5],
      [504, undefined, 5],
      [409, 'Conflict', 6],
      [503, 'AuditUnavailable', 7],
      [500, 'InternalError', 7],
      [502, undefined, 7],
      [429, undefined, 7],
    ];
    for (const [status, code, exit] of table) assert.equal(exitCodeFor(status, code), exit, `${status} ${code}`);
  });

  test('by final status', T, () => {
    assert.deepEqual(
      ['succeeded', 'planned', 'failed', 'timed_out', 'rejected', 'expired'].map(exitCodeForStatus),
      [0, 0, 1, 5, 4, 5],
    );
  });

  test('--json body of a local error has the server\'s shape', T, () => {
    const error = new CliError(Exit.Usage, 'InvalidArguments', 'bad', { details: { issues: [{ path: '/a', message: 'x' }] } });
    assert.deepEqual(JSON.parse(error.jsonText()), { error: { code: 'InvalidArguments', message: 'bad', issues: [{ path: '/a', message: 'x' }] } });
    const server = new CliError(Exit.Conflict, 'Conflict', 'busy', { raw: '{"error":{"code":"Conflict"}}' });
    assert.equal(server.jsonText(), '{"error":{"code":"Conflict"}}');
  });
});

describe('tokens', () => {
  const jwt = (claims: Record<string, unknown>) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

  test('expiry from exp, else expires_in, else five minutes; fresh until a minute before', T, () => {
    const now = 1_700_000_000_000;
    assert.equal(expiryOf(jwt({ exp: 1_700_000_600 }), 60, now), 1_700_000_600_000);
    assert.equal(expiryOf('opaque-token', 60, now), now + 60_000);
    assert.equal(expiryOf('opaque-token', undefined, now), now + 300_000);
    const entry = { accessToken: 'x', expiresAt: now + EXPIRY_MARGIN_MS + 1, method: 'm', fingerprint: 'f' };
    assert.equal(isFresh(entry, now), true);
    assert.equal(isFresh({ ...entry, expiresAt: now + EXPIRY_MARGIN_MS }, now), false);
    assert.equal(subjectOf(jwt({ sub: 's', 'cognito:username': 'carol' })), 'carol');
    assert.equal(subjectOf('opaque'), undefined);
  });

  const signed = (header: Record<string, unknown>, claims: Record<string, unknown>) =>
    `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2lnbmF0dXJl`;

  test('the name to greet: a name claim of the access token, then of the ID token; "client <id>" for an RFC 9068 client token', T, () => {
    // RFC 9068 user token: sub is the account, client_id the CLI; no name in it, the ID token has one.
    const access = jwt({ sub: 'acct-1', client_id: 'mm-cli', aud: 'https://api' });
    assert.equal(subjectOf(access, jwt({ sub: 'acct-1', preferred_username: 'alice' })), 'alice');
    assert.equal(subjectOf(access), 'acct-1', 'the subject, never the client id, for a user token');
    assert.equal(subjectOf(jwt({ sub: 'mm-ci', client_id: 'mm-ci' })), 'client mm-ci');
    assert.equal(subjectOf(jwt({ client_id: 'ci-runner', token_use: 'access' })), 'client ci-runner');
    assert.equal(subjectOf(jwt({ sub: 'u', email: 'e@x', name: 'Eve' })), 'e@x');
    assert.equal(subjectOf(jwt({ sub: 'u', name: 'Eve' })), 'Eve');
    assert.equal(subjectOf(jwt({ sub: 'uuid', username: 'carol', email: 'c@x' })), 'carol');
  });

  test('token shapes: opaque or JWT, described without the token; what can never pass', T, () => {
    const opaque = 'Xq3pAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_a';
    assert.equal(inspectToken(opaque).kind, 'opaque');
    assert.equal(inspectToken('a.b.c').kind, 'opaque', 'three parts that are not JSON');
    assert.equal(describeToken(opaque, { tokenType: 'Bearer' }), `an opaque token (token_type Bearer, ${opaque.length} characters, not a JWT)`);
    assert.match(unusableReason(opaque)!, /not a JWT/);
    const good = signed({ alg: 'RS256', typ: 'at+jwt' }, { iss: 'https://op', aud: 'https://api', exp: 4_000_000_000, sub: 's' });
    assert.equal(unusableReason(good), undefined);
    const text = describeToken(good);
    assert.match(text, /^a JWT \(typ at\+jwt, alg RS256\), from https:\/\/op, for audience https:\/\/api, expires 2096-/);
    assert.ok(!text.includes('c2lnbmF0dXJl') && !text.includes(good));
    assert.match(unusableReason(signed({ alg: 'RS256' }, { iss: 'i', aud: 'a' }))!, /no exp/);
    assert.match(unusableReason(signed({ alg: 'RS256' }, { iss: 'i', exp: 4_000_000_000 }))!, /neither aud nor client_id/);
    assert.equal(unusableReason(signed({ alg: 'RS256' }, { iss: 'i', client_id: 'c', token_use: 'access', exp: 4_000_000_000 })), undefined, 'a Cognito access token');
    assert.match(describeToken(signed({ alg: 'RS256' }, { iss: 'i', client_id: 'c', token_use: 'access', exp: 1 })), /for client_id c \(no aud\), token_use access, expired 1970/);
  });

  test('resource indicators; the Cognito endpoint in the AWS SDK\'s order', T, () => {
    assert.deepEqual(resourceList(undefined), []);
    assert.deepEqual(resourceList('https://a'), ['https://a']);
    assert.deepEqual(resourceList(['https://a', 'https://b']), ['https://a', 'https://b']);
    const base = { region: 'eu-west-1', clientId: 'c' };
    assert.equal(cognitoEndpoint({ ...base, env: {} }), 'https://cognito-idp.eu-west-1.amazonaws.com/');
    assert.equal(cognitoEndpoint({ ...base, endpoint: 'http://localhost:9229', env: {} }), 'http://localhost:9229/');
    assert.equal(cognitoEndpoint({ ...base, endpoint: 'http://localhost:9229', env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:1' } }), 'http://127.0.0.1:1/');
    assert.equal(
      cognitoEndpoint({ ...base, env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: 'https://vpce.example/' } }),
      'https://vpce.example/',
    );
    assert.equal(configuredEndpoint({ ...base, endpoint: 'http://localhost:9229', env: { AWS_ENDPOINT_URL: 'x', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' } }), undefined);
    assert.throws(() => cognitoEndpoint({ ...base, env: { AWS_ENDPOINT_URL: 'http://cognito.example.com' } }), /plain HTTP/);
  });

  test('registered secrets are redacted from every write', T, () => {
    registerSecret('eyJhbGciOi.secret-part.signature');
    registerSecret('short');
    assert.equal(redact('Bearer eyJhbGciOi.secret-part.signature and short'), 'Bearer [REDACTED] and short');
  });

  test('durations and times', T, () => {
    assert.equal(parseSeconds('90', 'x'), 90);
    assert.equal(parseSeconds('15m', 'x'), 900);
    assert.equal(parseSeconds('0.5', 'x'), 0.5);
    assert.throws(() => parseSeconds('0', 'x'));
    assert.throws(() => parseSeconds('soon', 'x'));
    const now = Date.parse('2025-02-01T00:00:00Z');
    assert.equal(parseSince('24h', now), '2025-01-31T00:00:00.000Z');
    assert.equal(parseSince('7d', now), '2025-01-25T00:00:00.000Z');
    assert.equal(parseSince('2025-01-31T12:00:00Z', now), '2025-01-31T12:00:00.000Z');
    assert.throws(() => parseSince('yesterday', now), (e: CliError) => e.exitCode === Exit.Usage);
  });
});
