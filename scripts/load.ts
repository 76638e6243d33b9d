/**
 * `npm run load`: a bounded load run on loopback, then an audit reconciliation.
 *
 *   npm run load -- [--requests N] [--concurrency C] [--time-limit SECONDS] [--seed S] [--instances K]
 *                   [--url http://127.0.0.1:3000 [--token JWT] [--dynamo-endpoint URL] [--table NAME]]
 *
 * Without --url it starts its own stack in this process — dynalite, a test token
 * issuer and the real `manage` handler served over loopback HTTP — so it runs on
 * a fresh clone with nothing else running. --instances K builds K handlers (K
 * cold starts, K audit clients) and gives each worker its own, one request at a
 * time: how K concurrent Lambda instances meet at the same table. With --url it targets a running local
 * stack (`npm start`): the token comes from --token, MM_TOKEN or `npm run token`,
 * and the audit table from --dynamo-endpoint/--table (defaults: the local stack's).
 *
 * The mix: echo and noop (200), fail (500), a bad token (401), a command that is
 * not allowed (403), bad arguments (400). It prints throughput, p50/p95/p99
 * latency and the status counts, then reconciles against the audit table: every
 * execution a response names has exactly one attempt and one outcome record, and
 * no record exists for a refused request (the table grew by exactly two items per
 * execution). It exits non-zero on any unexpected status, lost or extra record,
 * transport error, or if the time limit cut the run short.
 *
 * Environment: LOAD_REQUESTS, LOAD_CONCURRENCY, LOAD_TIME_LIMIT_SECONDS, LOAD_INSTANCES, LOAD_URL, MM_TOKEN.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { commandLoaders } from '../example/commands/index.js';
import { isLoopbackHost, loadConfig } from '../src/config.js';
import { createManageHandler } from '../src/handler/create.js';
import { DynamoAuditStore } from '../src/stores/audit/dynamodb.js';
import { faultyStore } from '../test/faults/support.js';
import { createLogger } from '../src/log.js';
import { startDynalite } from '../test/support/dynalite.js';
import { serveHandler } from '../test/support/http-server.js';
import { startTestIssuer } from '../test/support/issuer.js';
import { auditCensus, type AuditCensus, type AuditTable } from '../test/security/support.js';

const usage = `usage: npm run load -- [--requests N] [--concurrency C] [--time-limit SECONDS] [--seed S] [--instances K]
                     [--url URL [--token JWT] [--dynamo-endpoint URL] [--table NAME]] [--json]
                     [--drop-outcomes]   (in-process only: lose ~3% of outcome writes, to see the check fail)`;

interface Kind {
  name: string;
  weight: number;
  expect: number;
  /** Path, body and which token to use. */
  request: () => { path: string; body: unknown; token: 'good' | 'bad' };
}

const KINDS: Kind[] = [
  { name: 'echo', weight: 35, expect: 200, request: () => ({ path: '/__manage__/echo', body: { data: { message: 'load', repeat: 2 } }, token: 'good' }) },
  { name: 'noop', weight: 20, expect: 200, request: () => ({ path: '/__manage__/noop', body: {}, token: 'good' }) },
  { name: 'fail', weight: 15, expect: 500, request: () => ({ path: '/__manage__/fail', body: { data: { message: 'expected failure' } }, token: 'good' }) },
  { name: 'bad-token', weight: 10, expect: 401, request: () => ({ path: '/__manage__/echo', body: { data: { message: 'x' } }, token: 'bad' }) },
  { name: 'not-allowed', weight: 10, expect: 403, request: () => ({ path: '/__manage__/rm-rf', body: {}, token: 'good' }) },
  { name: 'bad-args', weight: 10, expect: 400, request: () => ({ path: '/__manage__/echo', body: { data: { message: 'x', repeat: 0 } }, token: 'good' }) },
];

interface Result {
  kind: string;
  status: number;
  ms: number;
  executionId?: string;
  auditRecorded?: boolean;
  error?: string;
}

function option(value: string | undefined, env: string | undefined, fallback: number, name: string, max: number): number {
  const raw = value ?? env;
  if (raw === undefined || raw === '') return fallback;
  const parsed = Number(raw);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > max) throw new UsageError(`${name} must be a whole number from 1 to ${max}, not "${raw}"`);
  return parsed;
}

class UsageError extends Error {}

/** A small deterministic PRNG (mulberry32): the same seed, the same mix. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function loopbackUrl(value: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} "${value}" is not a URL`);
  }
  if (!isLoopbackHost(url.hostname)) throw new UsageError(`${flag} must be on loopback (127.0.0.1, ::1 or localhost), not "${url.hostname}"`);
  return url;
}

/** Flips one bit in the middle of the signature: a well-formed token the verifier must refuse. */
function spoil(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  const bytes = Buffer.from(signature, 'base64url');
  bytes[bytes.length >> 1]! ^= 0x01;
  return `${header}.${payload}.${bytes.toString('base64url')}`;
}

interface Target {
  /** One base URL per handler instance; worker w uses urls[w % urls.length]. */
  urls: string[];
  goodToken: string;
  badToken: string;
  table: AuditTable;
  description: string;
  close(): Promise<void>;
}

async function inProcessTarget(dropOutcomes: boolean, instances: number): Promise<Target> {
  const [dynamo, issuer] = await Promise.all([startDynalite('mm-load-audit'), startTestIssuer('mm-load')]);
  const config = loadConfig(
    {
      MANAGE_ALLOW_LIST: 'noop,echo,sleep,fail',
      MANAGE_JWT_ISSUER: issuer.issuer,
      MANAGE_JWT_AUDIENCE: issuer.audience,
      MANAGE_AUDIT_TABLE: dynamo.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_REGION: 'us-east-1',
    },
    Object.keys(commandLoaders),
  );
  // The handler's log lines are counted, not printed: they would drown the report.
  let logLines = 0;
  // --drop-outcomes: every outcome write of one execution in 32 fails, retries included, the
  // first execution's always (counted in the order outcomes arrive, so a run always drops some).
  const doomed = new Set<string>();
  const counted = new Set<string>();
  const dropped = (id: string | undefined): boolean => {
    if (id === undefined) return false;
    if (!counted.has(id)) {
      if (counted.size % 32 === 0) doomed.add(id);
      counted.add(id);
    }
    return doomed.has(id);
  };
  const served = await Promise.all(
    Array.from({ length: instances }, () => {
      const store = new DynamoAuditStore({ tableName: dynamo.tableName, region: 'us-east-1', endpoint: dynamo.endpoint });
      const audit = dropOutcomes
        ? faultyStore(store, (kind, _n, id) => (kind === 'outcome' && dropped(id) ? new Error('dropped by --drop-outcomes') : undefined))
        : store;
      return serveHandler(createManageHandler(config, { commands: commandLoaders, audit, logger: createLogger(() => void logLines++) }));
    }),
  );
  const goodToken = await issuer.sign({ sub: 'load', username: 'load' }, { expiresIn: 3600 });
  return {
    urls: served.map((s) => s.url),
    goodToken,
    badToken: spoil(goodToken),
    table: dynamo,
    description: `in-process stack: dynalite, a test issuer and ${instances === 1 ? 'the manage handler' : `${instances} manage handler instances`} over loopback HTTP`,
    close: async () => {
      await Promise.all(served.map((s) => s.close()));
      await Promise.all([issuer.close(), dynamo.close()]);
    },
  };
}

function tokenFromLocalStack(): string {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'local/token.ts', '--sub', 'load'], { encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`could not get a token from \`npm run token\`: ${run.stderr.trim() || run.error?.message}; pass --token`);
  return run.stdout.trim();
}

async function remoteTarget(values: Record<string, string | boolean | undefined>): Promise<Target> {
  const url = loopbackUrl(String(values.url), '--url');
  const endpoint = loopbackUrl(
    String(values['dynamo-endpoint'] ?? process.env.AWS_ENDPOINT_URL_DYNAMODB ?? `http://127.0.0.1:${process.env.DYNAMODB_PORT ?? 8000}`),
    '--dynamo-endpoint',
  );
  const tableName = String(values.table ?? process.env.MANAGE_AUDIT_TABLE ?? 'middle-management-dev-audit');
  const goodToken = String(values.token ?? process.env.MM_TOKEN ?? tokenFromLocalStack());
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const client = new DynamoDBClient({ endpoint: endpoint.href.replace(/\/$/, ''), region: process.env.AWS_REGION ?? 'us-east-1', maxAttempts: 3 });
  return {
    urls: [url.href.replace(/\/$/, '')],
    goodToken,
    badToken: spoil(goodToken),
    table: { client, tableName },
    description: `running stack at ${url.origin} (audit table ${tableName} at ${endpoint.origin})`,
    close: async () => client.destroy(),
  };
}

async function send(target: Target, worker: number, kind: Kind): Promise<Result> {
  const { path, body, token } = kind.request();
  const started = performance.now();
  try {
    const response = await fetch(`${target.urls[worker % target.urls.length]}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token === 'good' ? target.goodToken : target.badToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { kind: kind.name, status: response.status, ms, error: `body is not JSON: ${text.slice(0, 100)}` };
    }
    const executionId: unknown = parsed?.executionId ?? parsed?.error?.executionId;
    const auditRecorded: unknown = parsed?.auditRecorded ?? parsed?.error?.auditRecorded;
    return {
      kind: kind.name,
      status: response.status,
      ms,
      ...(typeof executionId === 'string' ? { executionId } : {}),
      ...(auditRecorded === false ? { auditRecorded: false } : {}),
    };
  } catch (error) {
    return { kind: kind.name, status: 0, ms: performance.now() - started, error: (error as Error).message };
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', short: 'n' },
      concurrency: { type: 'string', short: 'c' },
      'time-limit': { type: 'string' },
      seed: { type: 'string' },
      instances: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      'dynamo-endpoint': { type: 'string' },
      table: { type: 'string' },
      json: { type: 'boolean' },
      'drop-outcomes': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const total = option(values.requests, process.env.LOAD_REQUESTS, 2000, '--requests', 1_000_000);
  const concurrency = option(values.concurrency, process.env.LOAD_CONCURRENCY, 32, '--concurrency', 1024);
  const timeLimitMs = option(values['time-limit'], process.env.LOAD_TIME_LIMIT_SECONDS, 300, '--time-limit', 3600) * 1000;
  const seed = option(values.seed, undefined, 1, '--seed', 2 ** 31);
  const instances = option(values.instances, process.env.LOAD_INSTANCES, 1, '--instances', 256);
  if (!values.url && process.env.LOAD_URL) values.url = process.env.LOAD_URL;

  const unhandled: unknown[] = [];
  process.on('unhandledRejection', (reason) => unhandled.push(reason));

  if (values.url && (values['drop-outcomes'] || values.instances)) throw new UsageError('--drop-outcomes and --instances work only with the in-process stack');
  const target = values.url ? await remoteTarget(values) : await inProcessTarget(Boolean(values['drop-outcomes']), instances);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const before = await auditCensus(target.table);
    const next = random(seed);
    const weights = KINDS.reduce((sum, kind) => sum + kind.weight, 0);
    const plan = Array.from({ length: total }, () => {
      let roll = next() * weights;
      return KINDS.find((kind) => (roll -= kind.weight) < 0) ?? KINDS[0]!;
    });

    log(`load: ${total} requests, concurrency ${concurrency}, seed ${seed}, against the ${target.description}`);
    const results: Result[] = [];
    let cursor = 0;
    let timedOut = false;
    const deadline = Date.now() + timeLimitMs;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(concurrency, total) }, async (_, worker) => {
        while (cursor < plan.length) {
          if (Date.now() > deadline) {
            timedOut = true;
            return;
          }
          const kind = plan[cursor++]!;
          results.push(await send(target, worker, kind));
        }
      }),
    );
    const wallMs = performance.now() - started;

    // ---- figures
    const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
    const statuses: Record<string, number> = {};
    for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const unexpected = results.filter((r) => r.status !== KINDS.find((k) => k.name === r.kind)!.expect || r.error);
    const lostOutcomes = results.filter((r) => r.auditRecorded === false);
    const executed = new Set(results.flatMap((r) => (r.executionId ? [r.executionId] : [])));
    const shouldExecute = results.filter((r) => r.kind === 'echo' || r.kind === 'noop' || r.kind === 'fail').length;

    // ---- reconciliation
    const after = await auditCensus(target.table);
    const problems = reconcileRun(before, after, executed);
    const newItems = after.items.length - before.items.length;
    const newUnattributed = after.unattributed - before.unattributed;
    if (newItems - newUnattributed !== 2 * executed.size) {
      problems.push(`the table grew by ${newItems - newUnattributed} execution records for ${executed.size} executions (expected ${2 * executed.size})`);
    }
    if (executed.size !== shouldExecute) problems.push(`${shouldExecute} requests should have run a command, ${executed.size} responses name an execution`);

    const fmt = (n: number) => n.toFixed(1);
    const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
    const summary = {
      requests: results.length,
      concurrency,
      wallSeconds: Number((wallMs / 1000).toFixed(2)),
      throughputPerSecond: Number((results.length / (wallMs / 1000)).toFixed(1)),
      latencyMs: {
        p50: Number(fmt(percentile(latencies, 50))),
        p95: Number(fmt(percentile(latencies, 95))),
        p99: Number(fmt(percentile(latencies, 99))),
        max: Number(fmt(latencies.at(-1) ?? 0)),
        mean: Number(fmt(mean)),
      },
      statuses,
      executions: executed.size,
      auditItemsAdded: newItems,
      unexpectedStatuses: unexpected.length,
      outcomesNotRecorded: lostOutcomes.length,
      reconciliationProblems: problems.length,
      timedOut,
      unhandledRejections: unhandled.length,
    };

    const out = (line = '') => process.stdout.write(`${line}\n`);
    if (values.json) out(JSON.stringify(summary, null, 2));
    else {
      out(`load run: ${summary.requests} requests at concurrency ${concurrency} (${target.description})`);
      out(`  wall time     ${fmt(wallMs / 1000)} s`);
      out(`  throughput    ${fmt(summary.throughputPerSecond)} requests/s`);
      out(`  latency (ms)  p50 ${fmt(summary.latencyMs.p50)}  p95 ${fmt(summary.latencyMs.p95)}  p99 ${fmt(summary.latencyMs.p99)}  max ${fmt(summary.latencyMs.max)}  mean ${fmt(mean)}`);
      out(`  statuses      ${Object.entries(statuses).map(([s, n]) => `${s}: ${n}`).join('  ')}`);
      out(`  mix           ${KINDS.map((k) => `${k.name} ${results.filter((r) => r.kind === k.name).length} (→ ${k.expect})`).join(', ')}`);
      out(`reconciliation against the audit table`);
      out(`  executions    ${executed.size} named by responses; ${newItems} items added to the table (${newUnattributed} not tied to an execution)`);
      out(`  refused       ${results.length - shouldExecute} requests refused (401/403/400), ${problems.some((p) => p.includes('no response reported')) ? 'SOME' : 'none'} left a record`);
    }
    const failures = [
      ...unexpected.slice(0, 10).map((r) => `unexpected: ${r.kind} answered ${r.status}${r.error ? ` (${r.error})` : ''}`),
      ...(unexpected.length > 10 ? [`… and ${unexpected.length - 10} more unexpected answers`] : []),
      ...(lostOutcomes.length ? [`${lostOutcomes.length} responses say the outcome was not recorded (auditRecorded: false)`] : []),
      ...problems.slice(0, 20),
      ...(timedOut ? [`the time limit of ${timeLimitMs / 1000} s cut the run short after ${results.length} of ${total} requests`] : []),
      ...unhandled.slice(0, 3).map((r) => `unhandled rejection: ${String(r)}`),
    ];
    if (failures.length) {
      for (const failure of failures) process.stderr.write(`FAIL ${failure}\n`);
      return 1;
    }
    if (!values.json) out('  OK: every execution has exactly one attempt and one outcome record; no refused request left one');
    return 0;
  } finally {
    await target.close();
  }
}

function reconcileRun(before: AuditCensus, after: AuditCensus, executed: Set<string>): string[] {
  const problems: string[] = [];
  for (const id of executed) {
    const entry = after.executions.get(id);
    if (!entry) problems.push(`lost: execution ${id} has no audit record`);
    else {
      if (entry.attempt !== 1) problems.push(`execution ${id} has ${entry.attempt} attempt records`);
      if (entry.outcome !== 1) problems.push(`execution ${id} has ${entry.outcome} outcome records`);
    }
  }
  for (const id of after.executions.keys()) {
    if (!before.executions.has(id) && !executed.has(id)) problems.push(`extra: audit records for ${id}, which no response reported`);
  }
  return problems;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const isUsage = error instanceof UsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`load: ${(error as Error)?.message ?? String(error)}\n${isUsage ? `${usage}\n` : ''}`);
    process.exit(isUsage ? 2 : 1);
  },
);
