/**
 * Request fuzzing through the real `manage` handler (real tokens, a real
 * dynalite): random methods, paths, headers and bodies, and argument values
 * aimed at every shipped command's schema.
 *
 * The property, for every request:
 * - the status is one of CONTRACT §2's, with its `{ error: { code, message } }`
 *   shape and the code that belongs to the status;
 * - never a 500 for bad input: a 500 is only `CommandFailed` from `fail`,
 *   a 504 only `CommandTimedOut` from `sleep`, a 503 never (the audit is up);
 * - no prototype of the process is polluted;
 * - every execution a response names has its attempt and outcome records.
 * After the run, the audit table holds records for exactly those executions.
 *
 * Used by `npm test` (a few hundred runs, test/security/fuzz-short.test.ts) and
 * `npm run fuzz` (10,000+, test/fuzz/requests.test.ts).
 */
import fc from 'fast-check';
import { UNAUTHORIZED_MESSAGE } from '../../src/errors.js';
import { lambdaContext, startStack, type TestStack } from '../support/stack.js';
import { auditCensus, reconcile } from '../security/support.js';

export const SHIPPED_COMMANDS = ['noop', 'echo', 'sleep', 'fail'] as const;

/** CONTRACT §2: status → the codes it may carry. */
const CODES_BY_STATUS: Record<number, readonly string[]> = {
  400: ['InvalidRequest', 'InvalidArguments'],
  401: ['Unauthorized'],
  403: ['CommandNotAllowed', 'Forbidden'],
  404: ['NotFound'],
  405: ['MethodNotAllowed'],
  409: ['Conflict'],
  413: ['PayloadTooLarge'],
  415: ['UnsupportedMediaType'],
  500: ['CommandFailed'],
  503: ['AuditUnavailable'],
  504: ['CommandTimedOut'],
};
const SUCCESS_STATUSES = new Set([200, 202]);
const EXECUTION_STATUSES = new Set(['accepted', 'awaiting_approval', 'running', 'succeeded', 'failed', 'timed_out', 'rejected', 'expired', 'planned']);

/** The HTTP time limit of the fuzzed stack: a long `sleep` is a quick 504. */
const HTTP_TIME_LIMIT_MS = 100;

// ---------------------------------------------------------------- generators

const longName = fc.integer({ min: 65, max: 6000 }).map((n) => 'e'.repeat(n));
const segment = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...SHIPPED_COMMANDS) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '..', '.', '%2e%2e', '%2E%2E%2F', 'echo%2F..', '%2Fecho', '..%2F..%2Fecho', 'ech%6F', '%65%63%68%6f', 'ECHO', 'Echo',
      'echo%00', 'echo\u0000', '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf',
      'executions', 'rm-rf', ' echo', 'echo ', 'écho', 'e\u0301cho', '😀', '%F0%9F%98%80', '%E0%A4%A', '%', '%%', 'echo;noop',
      'echo?x=1', '\u202Eohce', 'echo\\..\\noop', '~echo', '-', '_', 'a'.repeat(64), 'a'.repeat(65),
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }).map((s) => encodeURIComponent(s)) },
  { weight: 1, arbitrary: longName },
);

/** Paths around a target command: mostly its own, sometimes beside it. */
const pathFor = (target: string) =>
  fc.oneof(
    { weight: 14, arbitrary: fc.constant(`/__manage__/${target}`) },
    { weight: 2, arbitrary: fc.constantFrom(`/dev/__manage__/${target}`, `/__manage__/${encodeURIComponent(target)}`, `/__manage__/${target}/`) },
    { weight: 2, arbitrary: segment.map((s) => `/__manage__/${s}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom('', '/dev', '/prod', '/a/b', '//', '/..', '/%2e%2e', '/__MANAGE__'), fc.array(segment, { maxLength: 4 }))
        .map(([prefix, rest]) => `${prefix}/__manage__/${rest.join('/')}`),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '/__manage__', '/__manage__/', '/', '', '/__manage__/executions', '/__manage__/executions/',
        '/__manage__/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV', '/__manage__/executions/..', '/__manage__/executions/%2e%2e',
        '/__manage__/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV/approve', '/__manage__/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV/reject',
        '/__manage__/audit/verify', '/__manage__/audit', `/__manage__/${target}/extra`, `/__manage__//${target}`,
        `/__manage__/./${target}`, `/__manage__/../__manage__/${target}`,
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `/${s}`) },
  );

const method = fc.oneof(
  { weight: 30, arbitrary: fc.constant('POST') },
  { weight: 3, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'post', 'PoSt', 'get') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

const contentType = fc.oneof(
  { weight: 10, arbitrary: fc.constant(undefined) },
  { weight: 10, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/vnd.api+json',
      'application/merge-patch+json', 'text/plain', 'text/json', 'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x', '', 'application/json, text/plain', 'application/json;', 'application/jsonp',
      'application/json\u0000', 'application/+json', ';application/json',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

type AuthChoice = 'valid' | 'none' | 'twice' | 'garbage' | 'empty' | 'lower' | 'spaces' | 'v1-twice';
const auth = fc.oneof(
  { weight: 12, arbitrary: fc.constant<AuthChoice>('valid') },
  { weight: 3, arbitrary: fc.constantFrom<AuthChoice>('none', 'twice', 'garbage', 'empty', 'lower', 'spaces', 'v1-twice') },
);

/** A JSON value of any kind, small. */
const anyJson = fc.jsonValue({ maxDepth: 3 });
const hugeNumberText = fc.constantFrom('1e999', '-1e999', '1e308', '123456789012345678901234567890', '-0', '0.1e1', '1E1', '5e-324', '9007199254740993');

/** Argument values aimed at each command's schema: valid, boundary and wrong. */
const messageValue = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(4096), 'x'.repeat(4097), '', '\u0000', '\ud800', '[REDACTED]') },
  { weight: 1, arbitrary: anyJson },
);
const repeatValue = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 10 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 11, -1, 1.5, '2', null, true, [], {}, Number.MAX_SAFE_INTEGER, 1e308) },
  { weight: 1, arbitrary: fc.integer() },
);
const msValue = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom(-1, 900_001, 1.5, '5', null, false, [5], { ms: 1 }, 1e308) },
  // Valid but past the HTTP time limit: a quick 504.
  { weight: 1, arbitrary: fc.integer({ min: HTTP_TIME_LIMIT_MS + 50, max: 900_000 }) },
);

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isAdmin'];
const protoKey = fc.constantFrom(...PROTO_KEYS);
const extraKey = fc.oneof(protoKey, fc.string({ maxLength: 12 }));

/** `data` as a list of [key, value-as-JSON-text] pairs: JSON text keeps `__proto__` an own key. */
type Pairs = [string, string][];
const json = (value: unknown) => JSON.stringify(value) ?? 'null';

const argsFor: Record<string, fc.Arbitrary<Pairs>> = {
  noop: fc.constant([]),
  echo: fc
    .record(
      { message: messageValue, repeat: repeatValue, secret: fc.oneof(fc.string({ maxLength: 20 }), anyJson) },
      { requiredKeys: [] },
    )
    .map((args) => Object.entries(args).map(([k, v]): [string, string] => [k, json(v)])),
  sleep: fc.record({ ms: msValue }, { requiredKeys: [] }).map((args) => Object.entries(args).map(([k, v]): [string, string] => [k, json(v)])),
  fail: fc.record({ message: messageValue }, { requiredKeys: [] }).map((args) => Object.entries(args).map(([k, v]): [string, string] => [k, json(v)])),
};

const pollution = fc.constantFrom(
  '{"polluted":"yes"}',
  '{"__proto__":{"polluted":"yes"}}',
  '{"prototype":{"polluted":"yes"}}',
  '{"constructor":{"prototype":{"polluted":"yes"}}}',
);

/** Arguments that each command's schema accepts. */
const validArgsFor: Record<string, fc.Arbitrary<Pairs>> = {
  noop: fc.constant([]),
  echo: fc
    .record({ message: fc.string({ maxLength: 60 }), repeat: fc.integer({ min: 1, max: 10 }), secret: fc.string({ maxLength: 20 }) }, { requiredKeys: ['message'] })
    .map((args) => Object.entries(args).map(([k, v]): [string, string] => [k, json(v)])),
  sleep: fc.integer({ min: 0, max: 2 }).map((ms): Pairs => [['ms', json(ms)]]),
  fail: fc.record({ message: fc.string({ maxLength: 60 }) }, { requiredKeys: [] }).map((args) => Object.entries(args).map(([k, v]): [string, string] => [k, json(v)])),
};

/** `data` for a target command: valid for it, aimed at its schema, or meant for another command. */
const dataPairsFor = (target: string): fc.Arbitrary<Pairs> =>
  fc.oneof(
    { weight: 5, arbitrary: Object.hasOwn(validArgsFor, target) ? validArgsFor[target]! : fc.constant<Pairs>([]) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(
          Object.hasOwn(argsFor, target) ? argsFor[target]! : fc.constantFrom(...SHIPPED_COMMANDS).chain((name) => argsFor[name]!),
          fc.array(fc.tuple(extraKey, fc.oneof(pollution, anyJson.map(json), hugeNumberText)), { maxLength: 2 }),
          fc.boolean(),
        )
        .map(([args, extra, withExtra]) => (withExtra ? [...args, ...extra] : args)),
    },
    { weight: 1, arbitrary: fc.constantFrom(...SHIPPED_COMMANDS).chain((name) => argsFor[name]!) },
  );

const objectText = (pairs: Pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;

/** Deeply nested JSON from a depth alone: cheap to generate and to shrink. */
const deepNesting = fc
  .record({
    depth: fc.integer({ min: 1, max: 20_000 }),
    shape: fc.constantFrom('array', 'object'),
    where: fc.constantFrom('top', 'data', 'arg', 'dryRun'),
  })
  .map(({ depth, shape, where }) => {
    const nested = shape === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    if (where === 'top') return nested;
    if (where === 'data') return `{"data":${nested}}`;
    if (where === 'dryRun') return `{"data":{},"dryRun":${nested}}`;
    return `{"data":{"message":${nested}}}`;
  });

type Body =
  | { kind: 'none' }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; base64: string };

const bodyFor = (target: string): fc.Arbitrary<Body> => fc.oneof(
  { weight: 2, arbitrary: fc.constant<Body>({ kind: 'none' }) },
  {
    weight: 14,
    arbitrary: fc
      .record({
        data: fc.oneof(
          { weight: 1, arbitrary: fc.constant(undefined) },
          { weight: 16, arbitrary: dataPairsFor(target).map(objectText) },
          { weight: 1, arbitrary: anyJson.map(json) },
          { weight: 1, arbitrary: pollution },
        ),
        dryRun: fc.oneof(
          { weight: 8, arbitrary: fc.constant(undefined) },
          { weight: 3, arbitrary: fc.boolean().map(json) },
          { weight: 1, arbitrary: anyJson.map(json) },
        ),
        extra: fc.oneof(
          { weight: 12, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: fc.tuple(extraKey, fc.oneof(pollution, anyJson.map(json))) },
        ),
      })
      .map((payload): Body => {
        const pairs: Pairs = [];
        if (payload.data !== undefined) pairs.push(['data', payload.data]);
        if (payload.dryRun !== undefined) pairs.push(['dryRun', payload.dryRun]);
        if (payload.extra !== undefined) pairs.push([payload.extra[0], payload.extra[1]]);
        return { kind: 'text', text: objectText(pairs) };
      }),
  },
  { weight: 2, arbitrary: anyJson.map((v): Body => ({ kind: 'text', text: json(v) })) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((text): Body => ({ kind: 'text', text })) },
  { weight: 1, arbitrary: hugeNumberText.map((n): Body => ({ kind: 'text', text: `{"data":{"repeat":${n},"ms":${n},"message":${n}}}` })) },
  { weight: 1, arbitrary: deepNesting.map((text): Body => ({ kind: 'text', text })) },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((bytes): Body => ({ kind: 'bytes', base64: Buffer.concat([Buffer.from('{"data":{"message":"'), Buffer.from(bytes), Buffer.from('"}}')]).toString('base64') })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }).map((n): Body => ({ kind: 'text', text: `{"data":{"message":"${'x'.repeat(n)}"}}` })) },
);

export interface FuzzRequest {
  method: string;
  path: string;
  auth: AuthChoice;
  contentType: string | undefined;
  headers: Record<string, string>;
  query: Record<string, string> | undefined;
  body: Body;
  payload: 'v2' | 'v1';
}

/** Counterexamples stay readable: long texts are shown by their start and length. */
function describeRequest(request: FuzzRequest): string {
  const short = (text: string) => (text.length > 160 ? `${JSON.stringify(text.slice(0, 120))}…(${text.length} chars)` : JSON.stringify(text));
  const body =
    request.body.kind === 'none' ? 'none' : request.body.kind === 'text' ? `text ${short(request.body.text)}` : `base64 ${short(request.body.base64)}`;
  return `${request.payload} ${JSON.stringify(request.method)} ${short(request.path)} auth=${request.auth} content-type=${JSON.stringify(request.contentType)} headers=${short(JSON.stringify(request.headers))} query=${JSON.stringify(request.query)} body=${body}`;
}

/** The command a request aims at: mostly a shipped one, sometimes a name that is not a command. */
const target = fc.oneof({ weight: 10, arbitrary: fc.constantFrom<string>(...SHIPPED_COMMANDS) }, { weight: 2, arbitrary: segment });

export const requestArbitrary: fc.Arbitrary<FuzzRequest> = target.chain((name) => fc.record({
  method,
  path: pathFor(name),
  auth,
  contentType,
  headers: fc.record(
    {
      'idempotency-key': fc.string({ maxLength: 300 }),
      'user-agent': fc.string({ unit: 'binary', maxLength: 300 }),
      'x-forwarded-for': fc.constantFrom('127.0.0.1', '::1', 'evil, 10.0.0.1'),
      'content-encoding': fc.constantFrom('gzip', 'identity', 'br'),
    },
    { requiredKeys: [] },
  ),
  query: fc.option(
    fc.record({ limit: fc.oneof(fc.constantFrom('0', '1', '100', '101', '-1', '1.5', '1e2', ' 5', ''), fc.string({ maxLength: 6 })), cursor: fc.string({ maxLength: 80 }), command: fc.oneof(fc.constantFrom(...SHIPPED_COMMANDS), fc.string({ maxLength: 20 })) }, { requiredKeys: [] }),
    { nil: undefined },
  ),
  body: bodyFor(name),
  payload: fc.constantFrom<'v2' | 'v1'>('v2', 'v2', 'v2', 'v1'),
})).map((request) => Object.defineProperty(request, fc.toStringMethod, { value: () => describeRequest(request), enumerable: false }));

// ---------------------------------------------------------------- the property

export interface FuzzStats {
  runs: number;
  statuses: Record<string, number>;
  executions: number;
  durationMs: number;
}

export interface FuzzOptions {
  numRuns: number;
  /** Stop generating new cases after this long (the runs done so far count). */
  timeLimitMs: number;
  seed?: number;
  /** Called with a progress line every so often. */
  progress?: (line: string) => void;
}

/** Snapshots of every prototype an attacker would aim at. */
const PROTOTYPES: [string, object][] = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
];
function prototypeSnapshot(): string {
  return PROTOTYPES.map(([name, proto]) => `${name}:${Reflect.ownKeys(proto).map(String).sort().join(',')}`).join('|');
}

export class PropertyViolation extends Error {
  override name = 'PropertyViolation';
}
function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new PropertyViolation(message);
}

/** Runs the request fuzz against a fresh stack and returns what it saw; throws on any violation. */
export async function fuzzRequests(options: FuzzOptions): Promise<FuzzStats> {
  const stack = await startStack({ env: { MANAGE_HTTP_TIME_LIMIT_MS: String(HTTP_TIME_LIMIT_MS) } });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const stats: FuzzStats = { runs: 0, statuses: {}, executions: 0, durationMs: 0 };
  const executed = new Set<string>();
  const started = Date.now();
  const cleanPrototypes = prototypeSnapshot();
  try {
    const tokens = {
      valid: await stack.token({ username: 'fuzzer' }),
      other: await stack.token({ sub: 'fuzzer-2' }),
    };
    await fc.assert(
      fc.asyncProperty(requestArbitrary, async (request) => {
        stats.runs++;
        const response = await stack.handler(toEvent(request, tokens) as never, lambdaContext(30_000));
        const outcome = checkResponse(request, response as HttpResult);
        stats.statuses[outcome.status] = (stats.statuses[outcome.status] ?? 0) + 1;
        check(prototypeSnapshot() === cleanPrototypes, `a prototype was polluted: ${prototypeSnapshot()}`);
        check(({} as Record<string, unknown>).polluted === undefined, 'Object.prototype.polluted is set');
        check(unhandled.length === 0, `unhandled rejection: ${String(unhandled[0])}`);
        if (outcome.executionId) {
          executed.add(outcome.executionId);
          const record = await stack.audit.getExecution(outcome.executionId);
          check(record, `execution ${outcome.executionId} has no audit record`);
          check(record.outcomeRecorded === true, `execution ${outcome.executionId} has no outcome record`);
          if (outcome.executionStatus) {
            check(record.status === outcome.executionStatus, `audit says ${record.status}, response ${outcome.executionStatus}`);
          }
        }
        if (options.progress && stats.runs % 1000 === 0) {
          options.progress(`${stats.runs} runs, ${((Date.now() - started) / 1000).toFixed(1)} s, statuses ${JSON.stringify(stats.statuses)}`);
        }
      }),
      {
        numRuns: options.numRuns,
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        interruptAfterTimeLimit: options.timeLimitMs,
        markInterruptAsFailure: false,
        endOnFailure: false,
        includeErrorInReport: true,
      },
    );
    // The table holds records for exactly the executions that responses named.
    const problems = reconcile(await auditCensus(stack.dynamo), executed);
    check(problems.length === 0, `audit reconciliation: ${problems.slice(0, 10).join('; ')}`);
    check(unhandled.length === 0, `unhandled rejection: ${String(unhandled[0])}`);
    stats.executions = executed.size;
    stats.durationMs = Date.now() - started;
    return stats;
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await stack.close();
  }
}

interface HttpResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

function commandOf(request: FuzzRequest): string | undefined {
  const segments = request.path.split('/').filter(Boolean);
  const base = segments.indexOf('__manage__');
  if (base < 0 || segments.length !== base + 2) return undefined;
  try {
    return decodeURIComponent(segments[base + 1]!);
  } catch {
    return segments[base + 1];
  }
}

/** Checks one response against the contract; returns its status and the execution it names, if any. */
export function checkResponse(
  request: FuzzRequest,
  response: HttpResult,
): { status: number; executionId?: string; executionStatus?: string } {
  const status = response?.statusCode;
  check(typeof status === 'number', `no status code: ${JSON.stringify(response)}`);
  check(SUCCESS_STATUSES.has(status) || status in CODES_BY_STATUS, `status ${status} is not in the contract`);
  const headers = Object.fromEntries(Object.entries(response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  check(/^application\/json/.test(headers['content-type'] ?? ''), `status ${status} without a JSON content type`);
  let body: any;
  try {
    body = JSON.parse(response.body ?? '');
  } catch {
    throw new PropertyViolation(`status ${status} with a body that is not JSON: ${String(response.body).slice(0, 200)}`);
  }
  check(!/\n\s+at .+:\d+/.test(response.body ?? ''), 'a stack trace in the response');
  const command = commandOf(request);

  if (status >= 400) {
    check(body && typeof body === 'object' && !Array.isArray(body), 'error body is not an object');
    check(Object.keys(body).join() === 'error', `error body has keys ${Object.keys(body).join()}`);
    const { code, message, executionId } = body.error ?? {};
    check(typeof code === 'string' && typeof message === 'string', 'error without a code and a message');
    check(CODES_BY_STATUS[status]!.includes(code), `status ${status} with code ${code}`);
    if (status === 401) {
      check(headers['www-authenticate'] === 'Bearer', '401 without WWW-Authenticate: Bearer');
      check(message === UNAUTHORIZED_MESSAGE && Object.keys(body.error).length === 2, `401 reveals more: ${response.body}`);
    }
    if (status === 405) check(typeof headers.allow === 'string' && headers.allow.length > 0, '405 without Allow');
    if (status === 500) {
      check(code === 'CommandFailed' && command === 'fail', `500 for bad input: ${response.body?.slice(0, 300)}`);
    }
    if (status === 503) throw new PropertyViolation(`503 with a healthy audit store: ${response.body?.slice(0, 300)}`);
    if (status === 504) check(command === 'sleep', `504 from ${command}`);
    if (status === 500 || status === 504) {
      check(typeof executionId === 'string' && executionId.length > 0, `${status} without an executionId`);
      return { status, executionId, executionStatus: status === 500 ? 'failed' : 'timed_out' };
    }
    return { status };
  }

  // 200 / 202
  check(body && typeof body === 'object', 'success body is not an object');
  if (typeof body.executionId === 'string' && (request.method.toUpperCase() === 'POST')) {
    check(EXECUTION_STATUSES.has(body.status), `execution status ${body.status}`);
    check(command === body.command, `ran ${body.command} for a request to ${command}`);
    if (status === 200) {
      check(Array.isArray(body.output), '200 without output');
      check(typeof body.startedAt === 'string' && typeof body.finishedAt === 'string', '200 without timings');
      check(body.auditRecorded === undefined, 'auditRecorded:false with a healthy audit store');
    }
    return { status, executionId: body.executionId, ...(status === 200 ? { executionStatus: body.status } : {}) };
  }
  // The read routes (commands, executions, audit verification) answer a JSON object.
  check(!Array.isArray(body), `unexpected success body: ${response.body?.slice(0, 200)}`);
  return { status };
}

/** Builds the API Gateway event of a fuzzed request: payload 2.0, or REST v1 with multi-value headers. */
export function toEvent(request: FuzzRequest, tokens: { valid: string; other: string }) {
  const headers: Record<string, string> = { ...request.headers };
  const multi: Record<string, string[]> = {};
  const authorization: Record<AuthChoice, string[]> = {
    valid: [`Bearer ${tokens.valid}`],
    none: [],
    twice: [`Bearer ${tokens.valid},Bearer ${tokens.other}`],
    'v1-twice': [`Bearer ${tokens.valid}`, `Bearer ${tokens.other}`],
    garbage: ['Bearer x.y.z'],
    empty: ['Bearer '],
    lower: [`bearer ${tokens.valid}`],
    spaces: [`Bearer   ${tokens.valid}  `],
  };
  const values = authorization[request.auth];
  if (values.length) {
    headers.authorization = values.join(',');
    multi.authorization = values;
  }
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  for (const [name, value] of Object.entries(headers)) multi[name] ??= [value];

  const bodyFields =
    request.body.kind === 'none'
      ? {}
      : request.body.kind === 'text'
        ? { body: request.body.text, isBase64Encoded: false }
        : { body: request.body.base64, isBase64Encoded: true };
  if (request.payload === 'v1') {
    return {
      httpMethod: request.method,
      path: request.path,
      resource: '/{proxy+}',
      headers,
      multiValueHeaders: multi,
      queryStringParameters: request.query ?? null,
      requestContext: { requestId: `fuzz-${Math.random().toString(36).slice(2)}`, identity: { sourceIp: '198.51.100.77' } },
      ...bodyFields,
    };
  }
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: request.path,
    rawQueryString: request.query ? new URLSearchParams(request.query).toString() : '',
    headers,
    ...(request.query ? { queryStringParameters: request.query } : {}),
    requestContext: {
      http: { method: request.method, path: request.path, sourceIp: '198.51.100.77', userAgent: headers['user-agent'] ?? '', protocol: 'HTTP/1.1' },
      requestId: `fuzz-${Math.random().toString(36).slice(2)}`,
      stage: '$default',
    },
    ...bodyFields,
  };
}

/** Reads a positive whole number from the environment. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number, not "${raw}"`);
  return value;
}
