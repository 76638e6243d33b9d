/**
 * `npm run bench`: how fast and lean the `manage` Lambda is, measured side by
 * side with baselines in one run on this machine (issue 7).
 *
 *   npm run bench [-- --runs N] [--iterations N] [--load-seconds S] [--no-stack] [--json FILE]
 *   npm run bench -- --no-stack --compare DIR   (DIR: a copy of the tree before a change, e.g.
 *     `git archive <ref> | tar -x -C DIR`, node_modules linked: its manage bundle runs interleaved
 *     with this tree's in the same run, and middy's HTTP packages are loaded one by one)
 *
 * 1. cold init: a fresh `node` loads the bundled handler and exits, against
 *    `node -e ""` (the floor), a baseline bundle of only @middy/core,
 *    aws-jwt-verify and the SDK's DynamoDB client (bench/entries/baseline.ts),
 *    and the lean baseline of the libraries manage itself uses (@middy/core,
 *    aws-jwt-verify, @smithy/signature-v4, @aws-sdk/util-dynamodb:
 *    bench/entries/baseline-signed.ts) — issue 10's "libraries' floor";
 * 2. first invocation after load (JWKS fetch from a loopback issuer, the SDK's
 *    first calls to a local dynalite, the first command import), against the
 *    baseline verifying a token and writing one item;
 * 3. warm overhead: `echo` through the whole handler with in-memory stores and
 *    real token verification, against `echo.run` called directly;
 * 4. warm HTTP throughput and p99 of `noop` against `npm start` (loopback only);
 * 5. bundle bytes (raw, gzip) with the largest inputs, and `mm --help` start time.
 *
 * Every bundle is built with the esbuild options of serverless.yml's
 * custom.esbuild (bench/esbuild-options.ts); child processes run with the
 * deployed NODE_OPTIONS. Only 127.0.0.1 is used; everything started is stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build, type Metafile, type Plugin } from 'esbuild';
import { startDynalite, type TestDynamo } from '../test/support/dynalite.js';
import { startTestIssuer, type TestIssuer } from '../test/support/issuer.js';
import { serviceBuild } from './esbuild-options.js';
import { freePort, groupAlive } from '../local/processes.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const probes = join(root, 'bench', 'probes');
const example = join(root, 'example');

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    'first-runs': { type: 'string', default: '15' },
    iterations: { type: 'string', default: '3000' },
    'load-seconds': { type: 'string', default: '8' },
    'load-requests': { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '4' },
    'no-stack': { type: 'boolean', default: false },
    compare: { type: 'string' },
    json: { type: 'string' },
  },
});
const RUNS = Number(flags.runs);
const FIRST_RUNS = Number(flags['first-runs']);
const ITERATIONS = Number(flags.iterations);
const LOAD_SECONDS = Number(flags['load-seconds']);
const LOAD_REQUESTS = Number(flags['load-requests']);
const CONCURRENCY = Number(flags.concurrency);
/** Synthetic commands added to `manage` to see what each command costs a cold start. */
const SYNTHETIC_COMMANDS = 50;

const TARGETS = { coldRatio: 1.15, adoptionColdRatio: 1.1, leanColdRatio: 1.1, firstRatio: 1.2, warmOverheadMs: 1, bundleBytes: 700 * 1000, adoptionBundleBytes: 489 * 1000 };

const log = (text: string) => process.stderr.write(`[bench] ${text}\n`);

// ---------------------------------------------------------------- statistics

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}
const median = (values: number[]) => quantile(values, 0.5);
const failureText = (failures: Record<string, number>) =>
  Object.entries(failures)
    .map(([code, count]) => `${count} × ${code}`)
    .join(', ') || '0';
const ms = (value: number, digits = 1) => `${value.toFixed(digits)} ms`;
const ratio = (value: number) => `${value.toFixed(2)}×`;
const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} kB`;

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------- processes

interface ProbeResult {
  wallMs: number;
  report: any;
}

/** Runs `node args…` with the given environment; times spawn to exit; reads a JSON report from fd 3. */
function runNode(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<ProbeResult> {
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let report = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8');
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: string) => (report += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      clearTimeout(timer);
      // fd 3 may still hold the report: read it once the streams are closed.
      child.on('close', () => {
        if (code !== 0) return reject(new Error(`node ${args.join(' ')} failed (${signal ?? code}):\n${stderr}`));
        try {
          resolvePromise({ wallMs, report: report ? JSON.parse(report) : undefined });
        } catch (error) {
          reject(error);
        }
      });
    });
    child.on('error', reject);
  });
}


/**
 * A Lambda-like environment for the measured processes: no inherited NODE_OPTIONS,
 * NODE_EXTRA_CA_CERTS (it costs every `node` here ~30 ms to load the certificates;
 * Lambda sets none) or AWS and MANAGE_* variables of this shell.
 */
function lambdaLikeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { PATH, HOME, TMPDIR } = process.env;
  return {
    ...(PATH ? { PATH } : {}),
    ...(HOME ? { HOME } : {}),
    ...(TMPDIR ? { TMPDIR } : {}),
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...extra,
  };
}

/** This process's environment without anything that changes what the code under test does (for `npm start`). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(MANAGE_|AWS_|npm_|NODE_OPTIONS$|MM_)/.test(key)) continue;
    env[key] = value;
  }
  // The SDK's warning that it will drop Node 20 is noise (Lambda runs nodejs22.x), and it costs time.
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
}

// ---------------------------------------------------------------- bundles

interface Bundle {
  name: string;
  file: string;
  metafile: Metafile;
}

/** A `manage` entry with synthetic commands, loaded lazily (`() => import(…)`) or imported eagerly (as the example's registry does). */
function syntheticPlugin(count: number, eager: boolean): Plugin {
  const names = Array.from({ length: count }, (_, i) => `synthetic-${String(i + 1).padStart(2, '0')}`);
  const entry = [
    // Resolved from example/handlers, as the example's own handler is: the package as installed there.
    "import { createManageHandler } from 'serverless-middle-management';",
    "import { commandLoaders as shipped } from '../commands/index.js';",
    ...(eager ? names.map((name, i) => `import c${i} from 'synthetic:command/${name}';`) : []),
    'export const commands = {',
    '  ...shipped,',
    ...names.map((name, i) =>
      eager ? `  '${name}': async () => ({ default: c${i} }),` : `  '${name}': () => import('synthetic:command/${name}'),`,
    ),
    '};',
    'export const handler = createManageHandler({ commands });',
  ].join('\n');
  // A command of typical size: a schema of a few fields, a run and a plan.
  const command = (name: string) => `
import { Type, defineCommand } from 'serverless-middle-management';
export default defineCommand({
  description: 'Synthetic command ${name}: rotates the ${name} cache entries of one tenant.',
  args: Type.Object({
    tenant: Type.String({ minLength: 1, maxLength: 64, description: 'tenant id of ${name}' }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    mode: Type.Optional(Type.Union([Type.Literal('soft'), Type.Literal('hard')], { default: 'soft' })),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  }),
  timeLimitMs: 60_000,
  async run({ tenant, limit = 100, mode = 'soft' }, ctx) {
    const keys = Array.from({ length: Math.min(limit, 3) }, (_, i) => \`\${tenant}:${name}:\${i}\`);
    for (const key of keys) {
      if (ctx.signal.aborted) throw new Error('aborted');
      ctx.log(\`\${mode} rotate \${key}\`);
    }
    return { tenant, rotated: keys.length, mode, command: '${name}' };
  },
  plan: ({ tenant, limit = 100 }) => ({ wouldRotate: Math.min(limit, 3), tenant, command: '${name}' }),
});
`;
  return {
    name: 'synthetic-commands',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /^synthetic:/ }, (args) => ({ path: args.path, namespace: 'synthetic' }));
      pluginBuild.onLoad({ filter: /.*/, namespace: 'synthetic' }, (args) =>
        args.path === 'synthetic:entry'
          ? { contents: entry, loader: 'ts', resolveDir: join(example, 'handlers') }
          : { contents: command(args.path.slice('synthetic:command/'.length)), loader: 'ts', resolveDir: join(example, 'commands') },
      );
    },
  };
}

/** `import { Type } from '@sinclair/typebox'`: the whole type builder, every method kept. */
const NAMED_TYPE_IMPORT = "import { Type } from '@sinclair/typebox';";

/** Command modules that import TypeBox's `Type` object rather than its namespace. */
function commandsWithNamedTypeImport(): string[] {
  const dir = join(example, 'commands');
  return readdirSync(dir).filter((file) => file.endsWith('.ts') && readFileSync(join(dir, file), 'utf8').includes(NAMED_TYPE_IMPORT));
}

/**
 * A proposal, measured: the commands import TypeBox as a namespace
 * (`import * as Type from '@sinclair/typebox'`, same `Type.Object(…)` code), which
 * lets esbuild keep only the builders they call.
 */
const namespaceTypePlugin: Plugin = {
  name: 'typebox-namespace',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /[\\/]commands[\\/][^\\/]+\.ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replace(NAMED_TYPE_IMPORT, "import * as Type from '@sinclair/typebox';"),
      loader: 'ts',
    }));
  },
};

async function buildAll(outdir: string): Promise<Record<string, Bundle>> {
  const { options } = serviceBuild(example);
  const make = async (name: string, entry: string, plugins: Plugin[] = []): Promise<Bundle> => {
    const result = await build({
      ...options,
      absWorkingDir: example,
      entryPoints: { [name]: entry },
      outdir: join(outdir, name),
      metafile: true,
      logLevel: 'warning',
      plugins,
    });
    return { name, file: join(outdir, name, `${name}.mjs`), metafile: result.metafile };
  };
  const bundles = await Promise.all([
    make('manage', 'handlers/manage.ts'),
    make('baseline', join(root, 'bench/entries/baseline.ts')),
    make('baseline-lean', join(root, 'bench/entries/baseline-signed.ts')),
    make('warm', join(root, 'bench/entries/warm.ts')),
    make('synthetic-lazy', 'synthetic:entry', [syntheticPlugin(SYNTHETIC_COMMANDS, false)]),
    make('synthetic-eager', 'synthetic:entry', [syntheticPlugin(SYNTHETIC_COMMANDS, true)]),
    ...(commandsWithNamedTypeImport().length ? [make('typebox-namespace', 'handlers/manage.ts', [namespaceTypePlugin])] : []),
    ...(flags.compare
      ? [
          make('manage-before', join(resolve(flags.compare), 'example/handlers/manage.ts')),
          make('warm-before', join(resolve(flags.compare), 'bench/entries/warm.ts')),
          ...Object.keys(MIDDY_PROBES).map((name) => make(name, `middy-probe:${name}`, [middyProbePlugin])),
        ]
      : []),
  ]);
  return Object.fromEntries(bundles.map((bundle) => [bundle.name, bundle]));
}

/**
 * What one of middy's HTTP packages costs a cold start on its own: a handler
 * of @middy/core alone, and the same with one package imported and used.
 */
const MIDDY_PROBES: Record<string, string> = {
  'middy-core': '',
  'middy-router': '@middy/http-router',
  'middy-header-normalizer': '@middy/http-header-normalizer',
  'middy-json-body-parser': '@middy/http-json-body-parser',
};

const middyProbePlugin: Plugin = {
  name: 'middy-probe',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^middy-probe:/ }, (args) => ({ path: args.path, namespace: 'middy-probe' }));
    pluginBuild.onLoad({ filter: /.*/, namespace: 'middy-probe' }, (args) => {
      const pkg = MIDDY_PROBES[args.path.slice('middy-probe:'.length)];
      return {
        contents: pkg
          ? `import middy from '@middy/core';\nimport used from '${pkg}';\nexport const handler = middy().handler(() => typeof used);\n`
          : `import middy from '@middy/core';\nexport const handler = middy().handler(() => 'core');\n`,
        loader: 'ts',
        resolveDir: root,
      };
    });
  },
};

/** Bytes in the output per package (or project folder), largest first. */
function largestInputs(bundle: Bundle, top: number): Array<[string, number]> {
  const output = Object.entries(bundle.metafile.outputs).find(([file]) => file.endsWith('.mjs'))![1];
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    const key = match ? match[1]! : `${input.split('/')[0]}/ (ours)`;
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  return [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, top);
}

function size(file: string): { raw: number; gzip: number; map: number } {
  const bytes = readFileSync(file);
  return { raw: bytes.length, gzip: gzipSync(bytes).length, map: existsSync(`${file}.map`) ? readFileSync(`${file}.map`).length : 0 };
}

// ---------------------------------------------------------------- the local stack

class LocalStack {
  private child: ChildProcess | undefined;
  private stdout = '';
  private stderr = '';
  private exitCode: number | null | undefined;
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly port: number,
    ports: { lambda: number; dynamo: number; issuer: number },
    issuerFile: string,
  ) {
    this.env = cleanEnv({
      PORT: String(port),
      LAMBDA_PORT: String(ports.lambda),
      DYNAMODB_PORT: String(ports.dynamo),
      ISSUER_PORT: String(ports.issuer),
      DEV_ISSUER_FILE: issuerFile,
    });
  }

  async start(timeoutMs = 150_000): Promise<void> {
    // Its own process group: stopping it reaches everything it started.
    this.child = spawn('npm', ['start'], { cwd: root, env: this.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.on('exit', (code, signal) => (this.exitCode = code ?? (signal ? -1 : null)));
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes('local stack is ready')) {
      if (this.exitCode !== undefined) throw new Error(`npm start exited (${this.exitCode}):\n${this.stderr.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`npm start was not ready within ${timeoutMs / 1000} s:\n${this.stderr.slice(-2000)}`);
      await sleep(100);
    }
  }

  async token(): Promise<string> {
    const { stdout } = await execNpm(['run', '-s', 'token'], this.env);
    const token = stdout.trim();
    if (!/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`npm run -s token printed no token: ${stdout}`);
    return token;
  }

  /** SIGTERM to npm start's group (it stops offline's group itself), SIGKILL to whatever is left. */
  async stop(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    const offline = /serverless-offline is process group (\d+)/.exec(this.stderr)?.[1];
    const groups = [pid, ...(offline ? [Number(offline)] : [])];
    signalGroup(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (groups.some(groupAlive) && Date.now() < deadline) await sleep(100);
    for (const group of groups) signalGroup(group, 'SIGKILL');
  }
}

function execNpm(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('npm', args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (code) => (code === 0 ? resolvePromise({ stdout }) : reject(new Error(`npm ${args.join(' ')}: ${stderr}`))));
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}


const sleep = (delay: number) => new Promise((done) => setTimeout(done, delay));

/** `noop` over HTTP with CONCURRENCY keep-alive clients until the time or request budget is spent. */
async function loadTest(
  url: string,
  token: string,
): Promise<{ requests: number; seconds: number; latencies: number[]; failures: Record<string, number> }> {
  const call = async () => {
    const started = performance.now();
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const body = await response.text();
    const code = response.status === 200 ? undefined : `${response.status} ${/"code":"(\w+)"/.exec(body)?.[1] ?? ''}`.trim();
    return { ok: response.status === 200, code, ms: performance.now() - started };
  };
  for (let i = 0; i < 50; i++) {
    const { ok } = await call();
    if (!ok) throw new Error(`noop over HTTP failed during warm-up`);
  }
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let issued = 0;
  const started = performance.now();
  const deadline = started + LOAD_SECONDS * 1000;
  const client = async () => {
    while (issued < LOAD_REQUESTS && performance.now() < deadline) {
      issued++;
      const { code, ms: latency } = await call();
      latencies.push(latency);
      if (code) failures[code] = (failures[code] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  return { requests: latencies.length, seconds: (performance.now() - started) / 1000, latencies, failures };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const wallStarted = Date.now();
  const loadBefore = loadavg()[0]!;
  // This process runs dynalite and a DynamoDB client for it: no Node 20 notice from the SDK.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const service = serviceBuild(example);
  const work = await mkdtemp(join(tmpdir(), 'mm-bench-'));
  let dynamo: TestDynamo | undefined;
  let issuer: TestIssuer | undefined;
  let stack: LocalStack | undefined;
  const out: string[] = [];
  const say = (text = '') => {
    out.push(text);
    process.stdout.write(`${text}\n`);
  };
  const json: Record<string, unknown> = {};
  const stopAll = async () => {
    await stack?.stop().catch(() => undefined);
    await Promise.all([dynamo?.close(), issuer?.close()].map((closing) => closing?.catch(() => undefined)));
    await rm(work, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void stopAll().finally(() => process.exit(130)));
  }

  try {
    log('building bundles with serverless.yml custom.esbuild options');
    const bundles = await buildAll(work);

    [dynamo, issuer] = await Promise.all([startDynalite('mm-bench-audit'), startTestIssuer('mm-bench')]);
    const token = await issuer.sign({ sub: 'bench', username: 'bench' }, { expiresIn: 3600 });
    const lambdaEnv = lambdaLikeEnv({
      NODE_OPTIONS: service.nodeOptions,
      MANAGE_ALLOW_LIST: 'noop,echo,sleep,fail',
      MANAGE_JWT_ISSUER: issuer.issuer,
      MANAGE_JWT_AUDIENCE: issuer.audience,
      MANAGE_AUDIT_TABLE: dynamo.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_LAMBDA_FUNCTION_NAME: 'middle-management-bench-manage',
    });
    const syntheticEnv = { ...lambdaEnv, MANAGE_ALLOW_LIST: `noop,echo,sleep,fail,${Array.from({ length: SYNTHETIC_COMMANDS }, (_, i) => `synthetic-${String(i + 1).padStart(2, '0')}`).join(',')}` };

    // ---- 1. cold init
    log(`cold init: ${RUNS} fresh processes per variant, interleaved`);
    const cold = join(probes, 'cold.mjs');
    const variants: Array<{ key: string; label: string; args: string[]; env: NodeJS.ProcessEnv }> = [
      { key: 'floor', label: 'node -e "" (floor)', args: ['-e', ''], env: lambdaEnv },
      { key: 'esm', label: 'empty ESM probe', args: [cold], env: { ...lambdaEnv, BENCH_FD3: '1' } },
      { key: 'baseline', label: 'baseline bundle', args: [cold, bundles.baseline!.file], env: { ...lambdaEnv, BENCH_FD3: '1' } },
      { key: 'lean', label: 'lean baseline (manage\'s libraries)', args: [cold, bundles['baseline-lean']!.file], env: { ...lambdaEnv, BENCH_FD3: '1' } },
      { key: 'manage', label: 'manage bundle', args: [cold, bundles.manage!.file], env: { ...lambdaEnv, BENCH_FD3: '1' } },
      { key: 'lazy', label: `manage + ${SYNTHETIC_COMMANDS} commands, lazy`, args: [cold, bundles['synthetic-lazy']!.file], env: { ...syntheticEnv, BENCH_FD3: '1' } },
      { key: 'eager', label: `manage + ${SYNTHETIC_COMMANDS} commands, eager`, args: [cold, bundles['synthetic-eager']!.file], env: { ...syntheticEnv, BENCH_FD3: '1' } },
      ...(bundles['typebox-namespace']
        ? [{ key: 'namespace', label: 'manage, TypeBox as namespace (proposal)', args: [cold, bundles['typebox-namespace'].file], env: { ...lambdaEnv, BENCH_FD3: '1' } }]
        : []),
      ...(flags.compare
        ? [
            { key: 'before', label: 'manage bundle, before (--compare)', args: [cold, bundles['manage-before']!.file], env: { ...lambdaEnv, BENCH_FD3: '1' } },
            ...Object.entries(MIDDY_PROBES).map(([key, pkg]) => ({
              key,
              label: pkg ? `@middy/core + ${pkg}` : '@middy/core alone',
              args: [cold, bundles[key]!.file],
              env: { ...lambdaEnv, BENCH_FD3: '1' },
            })),
          ]
        : []),
    ];
    const wall: Record<string, number[]> = {};
    const imports: Record<string, number[]> = {};
    const importCpu: Record<string, number[]> = {};
    for (let run = -2; run < RUNS; run++) {
      for (const variant of variants) {
        const { wallMs, report } = await runNode(variant.args, variant.env);
        if (run < 0) continue; // two rounds to warm the file cache
        (wall[variant.key] ??= []).push(wallMs);
        if (report) {
          (imports[variant.key] ??= []).push(report.importMs);
          (importCpu[variant.key] ??= []).push(report.importCpuMs);
        }
      }
    }
    const med = (key: string) => median(wall[key]!);
    const floor = med('floor');
    const coldRatio = med('manage') / med('baseline');
    const coldAboveFloorRatio = (med('manage') - floor) / (med('baseline') - floor);
    const leanColdRatio = med('manage') / med('lean');

    // ---- 2. first invocation
    log(`first invocation: ${FIRST_RUNS} fresh processes per variant`);
    const first: Record<string, { importMs: number[]; firstMs: number[]; firstCpuMs: number[]; secondMs: number[] }> = {};
    for (let run = -1; run < FIRST_RUNS; run++) {
      for (const key of ['baseline', 'baseline-audit', 'lean', 'manage'] as const) {
        const bundle = key === 'manage' ? bundles.manage! : key === 'lean' ? bundles['baseline-lean']! : bundles.baseline!;
        const { report } = await runNode([join(probes, 'first.mjs'), bundle.file], {
          ...lambdaEnv,
          BENCH_TOKEN: token,
          ...(key === 'baseline-audit' ? { BENCH_BASELINE_AUDIT: '1' } : {}),
        });
        if (run < 0) continue;
        const entry = (first[key] ??= { importMs: [], firstMs: [], firstCpuMs: [], secondMs: [] });
        entry.importMs.push(report.importMs);
        entry.firstMs.push(report.firstMs);
        entry.firstCpuMs.push(report.firstCpuMs);
        entry.secondMs.push(report.secondMs);
      }
    }
    const firstRatio = median(first.manage!.firstMs) / median(first.baseline!.firstMs);
    const firstCpuRatio = median(first.manage!.firstCpuMs) / median(first.baseline!.firstCpuMs);
    const firstAuditRatio = median(first.manage!.firstMs) / median(first['baseline-audit']!.firstMs);

    // ---- manifest question: what loading every command costs a fresh instance
    log('command loading: what a build-time manifest for GET /__manage__ could save');
    const loading: Record<string, { count: number; oneMs: number[]; allMs: number[] }> = {};
    for (let run = 0; run < RUNS; run++) {
      for (const key of ['warm', 'synthetic-lazy'] as const) {
        const { report } = await runNode([join(probes, 'commands.mjs'), bundles[key]!.file], key === 'warm' ? lambdaEnv : syntheticEnv);
        const entry = (loading[key] ??= { count: report.count, oneMs: [], allMs: [] });
        entry.oneMs.push(report.oneMs);
        entry.allMs.push(report.allMs);
      }
    }

    // ---- 3. warm overhead
    log(`warm overhead: ${ITERATIONS} invocations of echo, through the handler and direct`);
    const warmRun = async (bundle: Bundle) =>
      (await runNode([join(probes, 'warm.mjs'), bundle.file], { ...lambdaEnv, BENCH_TOKEN: token, BENCH_ITERATIONS: String(ITERATIONS) }, 120_000)).report as {
        handlerMs: number[];
        directMs: number[];
      };
    const warm = { handlerMs: [] as number[], directMs: [] as number[] };
    const warmBefore = { handlerMs: [] as number[], directMs: [] as number[] };
    // Compared, the two bundles take turns (3 processes each), so that both see the same machine.
    for (let round = 0; round < (flags.compare ? 3 : 1); round++) {
      for (const [bundle, into] of [[bundles.warm!, warm], ...(flags.compare ? [[bundles['warm-before']!, warmBefore]] : [])] as Array<[Bundle, typeof warm]>) {
        const report = await warmRun(bundle);
        into.handlerMs.push(...report.handlerMs);
        into.directMs.push(...report.directMs);
      }
    }
    const warmHandler = median(warm.handlerMs);
    const warmDirect = median(warm.directMs);
    const warmOverhead = warmHandler - warmDirect;

    await Promise.all([dynamo.close(), issuer.close()]);
    dynamo = undefined;
    issuer = undefined;

    // ---- 4. the local stack
    let throughput:
      | { rps: number; p50: number; p99: number; max: number; requests: number; failures: Record<string, number>; bootSeconds: number }
      | undefined;
    let stackNote = '';
    if (flags['no-stack']) stackNote = 'skipped (--no-stack)';
    else {
      log('local stack: npm start on free loopback ports');
      const [port, lambda, dynamoPort, issuerPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
      stack = new LocalStack(port, { lambda, dynamo: dynamoPort, issuer: issuerPort }, join(work, 'dev-issuer.json'));
      const booting = Date.now();
      try {
        await stack.start();
        const bootSeconds = (Date.now() - booting) / 1000;
        const stackToken = await stack.token();
        log(`local stack: noop for up to ${LOAD_SECONDS} s or ${LOAD_REQUESTS} requests, ${CONCURRENCY} clients`);
        const load = await loadTest(`http://127.0.0.1:${port}/__manage__/noop`, stackToken);
        throughput = {
          rps: load.requests / load.seconds,
          p50: median(load.latencies),
          p99: quantile(load.latencies, 0.99),
          max: Math.max(...load.latencies),
          requests: load.requests,
          failures: load.failures,
          bootSeconds,
        };
      } catch (error) {
        stackNote = `failed: ${(error as Error).message.split('\n')[0]}`;
      } finally {
        await stack.stop();
        stack = undefined;
      }
    }

    // ---- 5. bundle bytes and mm --help
    const manageSize = size(bundles.manage!.file);
    const baselineSize = size(bundles.baseline!.file);
    const leanSize = size(bundles['baseline-lean']!.file);
    let cliLine = '';
    let cliMedian: number | undefined;
    if (existsSync(join(root, 'dist', 'cli', 'main.mjs'))) {
      log('mm --help: scripts/bench-cli.mjs');
      const cliFloor: number[] = [];
      for (let run = 0; run < 10; run++) cliFloor.push((await runNode(['-e', ''], lambdaLikeEnv({}))).wallMs);
      const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, [join(root, 'scripts', 'bench-cli.mjs'), String(RUNS)], {
          cwd: root,
          env: lambdaLikeEnv({}),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        child.on('close', (code) => done({ code, stdout, stderr }));
      });
      const match = /median (\d+(?:\.\d+)?) ms, p95 (\d+(?:\.\d+)?) ms/.exec(result.stdout);
      if (match) {
        cliMedian = Number(match[1]);
        cliLine = `median ${match[1]} ms, p95 ${match[2]} ms (${RUNS} runs; the same environment's \`node -e ""\` floor without source maps: ${ms(median(cliFloor))})`;
      } else cliLine = `failed: ${(result.stderr || result.stdout).trim().split('\n')[0]}`;
    } else cliLine = 'skipped: dist/cli/main.mjs is not built (npm ci builds it; or npm run build:cli)';

    // ---------------------------------------------------------- report
    const cpu = cpus();
    say(`## Results`);
    say();
    say(`Machine: ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, Node.js ${process.version}, ${process.platform}/${process.arch}.`);
    say(`Bundles: esbuild ${(await import('esbuild')).version} with serverless.yml custom.esbuild; child processes run with NODE_OPTIONS="${service.nodeOptions}" as deployed.`);
    say();
    say(`### 1. Cold init (fresh \`node\` process, spawn to exit; median of ${RUNS})`);
    say();
    const coldRows = variants.map((variant) => {
      const w = med(variant.key);
      return [
        variant.label,
        ms(w),
        variant.key === 'floor' ? '—' : ms(w - floor),
        imports[variant.key] ? ms(median(imports[variant.key]!)) : '—',
        importCpu[variant.key] ? ms(median(importCpu[variant.key]!)) : '—',
        variant.key === 'floor' || variant.key === 'esm' ? '—' : ratio(w / med('baseline')),
        variant.key === 'floor' || variant.key === 'esm' ? '—' : ratio(w / med('lean')),
      ];
    });
    say(table(['process', 'wall', 'above floor', 'import()', 'import() CPU', 'wall vs baseline', 'vs lean baseline'], coldRows));
    say();
    const cpuMed = (key: string) => median(importCpu[key]!);
    say(
      `manage − baseline: ${ms(med('manage') - med('baseline'))} wall (${ratio(coldRatio)}; ${ratio(coldAboveFloorRatio)} above the floor); ` +
        `import() CPU ${ms(cpuMed('manage') - cpuMed('baseline'))} (${ratio(cpuMed('manage') / cpuMed('baseline'))}).`,
    );
    say(
      `manage − lean baseline (the libraries manage uses, nothing of ours): ${ms(med('manage') - med('lean'))} wall (${ratio(leanColdRatio)}; ` +
        `${ratio((med('manage') - floor) / (med('lean') - floor))} above the floor); import() CPU ${ms(cpuMed('manage') - cpuMed('lean'))} (${ratio(cpuMed('manage') / cpuMed('lean'))}).`,
    );
    if (bundles['typebox-namespace']) {
      const files = commandsWithNamedTypeImport().map((file) => `commands/${file}`).join(', ');
      say(
        `Proposal: ${files} import \`{ Type }\` from '@sinclair/typebox', the builder object with every method; ` +
          `\`import * as Type from '@sinclair/typebox'\` (same code otherwise) makes the bundle ${kb(size(bundles['typebox-namespace'].file).raw)} ` +
          `(${kb(size(bundles['typebox-namespace'].file).raw - size(bundles.manage!.file).raw)}) and cold init ${ratio(med('namespace') / med('baseline'))} ` +
          `(import() CPU ${ms(cpuMed('namespace') - cpuMed('manage'))}).`,
      );
    }
    say(
      `Each of ${SYNTHETIC_COMMANDS} more commands adds to a cold start's import() CPU ${ms((cpuMed('lazy') - cpuMed('manage')) / SYNTHETIC_COMMANDS, 3)} when loaded lazily ` +
        `(as commands/index.ts does), ${ms((cpuMed('eager') - cpuMed('manage')) / SYNTHETIC_COMMANDS, 3)} when imported eagerly; ` +
        `+${kb(size(bundles['synthetic-lazy']!.file).raw - manageSize.raw)} of bundle.`,
    );
    say();
    say(`### 2. First invocation after load (median of ${FIRST_RUNS} fresh processes)`);
    say();
    say(
      table(
        ['handler', 'import()', 'first invocation', 'its CPU', 'second invocation'],
        (['baseline', 'baseline-audit', 'lean', 'manage'] as const).map((key) => [
          {
            baseline: 'baseline: verify + 1 PutItem',
            'baseline-audit': 'baseline: verify + Query + 2 PutItem',
            lean: 'lean baseline: verify + 1 signed PutItem',
            manage: 'manage: POST /__manage__/echo',
          }[key],
          ms(median(first[key]!.importMs)),
          ms(median(first[key]!.firstMs)),
          ms(median(first[key]!.firstCpuMs)),
          ms(median(first[key]!.secondMs)),
        ]),
      ),
    );
    say();
    say(
      `manage − baseline on the first invocation: ${ms(median(first.manage!.firstMs) - median(first.baseline!.firstMs))} (${ratio(firstRatio)}; CPU ${ratio(firstCpuRatio)}). ` +
        `Both fetch the JWKS from a loopback issuer and make their first DynamoDB call (the baseline with the SDK's client, manage signed) to a local dynalite; ` +
        `manage also loads and validates the command and reads the audit chain's head, writes the attempt, runs, writes the outcome: ` +
        `3 DynamoDB calls of 2 operations to the baseline's 1. Against the baseline making those same 3 calls: ` +
        `${ms(median(first.manage!.firstMs) - median(first['baseline-audit']!.firstMs))} (${ratio(firstAuditRatio)}).`,
    );
    say();
    say(`Command loading (what a build-time manifest for GET /__manage__ would save, fresh process, median of ${RUNS}):`);
    say();
    say(
      table(
        ['bundle', 'commands', 'load the first', 'load all'],
        (['warm', 'synthetic-lazy'] as const).map((key) => [
          key === 'warm' ? 'manage' : `manage + ${SYNTHETIC_COMMANDS} synthetic`,
          String(loading[key]!.count),
          ms(median(loading[key]!.oneMs), 2),
          ms(median(loading[key]!.allMs), 2),
        ]),
      ),
    );
    say();
    say(`### 3. Warm overhead (one process, in-memory stores, median of ${ITERATIONS})`);
    say();
    say(
      table(
        ['path', 'median', 'p90', 'p99'],
        [
          ['echo through the handler (HTTP event, token verified)', ms(warmHandler, 3), ms(quantile(warm.handlerMs, 0.9), 3), ms(quantile(warm.handlerMs, 0.99), 3)],
          ['echo.run() called directly', ms(warmDirect, 4), ms(quantile(warm.directMs, 0.9), 4), ms(quantile(warm.directMs, 0.99), 4)],
        ],
      ),
    );
    say();
    say(`Overhead per invocation: ${ms(warmOverhead, 3)} (median).`);
    say();
    say(`### 4. Warm HTTP against \`npm start\` (noop, ${CONCURRENCY} keep-alive clients, up to ${LOAD_SECONDS} s / ${LOAD_REQUESTS} requests)`);
    say();
    if (throughput) {
      say(
        table(
          ['requests', 'failures', 'throughput', 'p50', 'p99', 'max', 'stack boot'],
          [[String(throughput.requests), failureText(throughput.failures), `${throughput.rps.toFixed(0)} req/s`, ms(throughput.p50), ms(throughput.p99), ms(throughput.max), `${throughput.bootSeconds.toFixed(1)} s`]],
        ),
      );
      say();
      say('serverless-offline (in process) in front of the handler, dynalite behind it, all on this machine: a functional stand-in, not Lambda.');
    } else say(`Local stack ${stackNote}.`);
    say();
    say('### 5. Size and CLI start');
    say();
    say(
      table(
        ['bundle', 'raw', 'gzip', 'source map'],
        [
          ['manage (handlers/manage.mjs)', kb(manageSize.raw), kb(manageSize.gzip), kb(manageSize.map)],
          ['baseline', kb(baselineSize.raw), kb(baselineSize.gzip), kb(baselineSize.map)],
          ['lean baseline', kb(leanSize.raw), kb(leanSize.gzip), kb(leanSize.map)],
        ],
      ),
    );
    say();
    say('Largest inputs of the manage bundle (bytes in the minified output):');
    say();
    say(table(['input', 'bytes'], largestInputs(bundles.manage!, 12).map(([name, bytes]) => [name, kb(bytes)])));
    say();
    say(`\`mm --help\` start: ${cliLine}.`);
    say();
    let compared: Record<string, unknown> | undefined;
    if (flags.compare) {
      const beforeSize = size(bundles['manage-before']!.file);
      const beforeOverhead = median(warmBefore.handlerMs) - median(warmBefore.directMs);
      say(`### Before and after (--compare ${flags.compare}; interleaved in this run)`);
      say();
      say(
        table(
          ['', 'cold wall', 'cold import() CPU', 'warm overhead', 'bundle raw', 'gzip'],
          [
            ['before', ms(med('before')), ms(cpuMed('before')), ms(beforeOverhead, 3), kb(beforeSize.raw), kb(beforeSize.gzip)],
            ['after', ms(med('manage')), ms(cpuMed('manage')), ms(warmOverhead, 3), kb(manageSize.raw), kb(manageSize.gzip)],
            ['after − before', ms(med('manage') - med('before')), ms(cpuMed('manage') - cpuMed('before')), ms(warmOverhead - beforeOverhead, 3), kb(manageSize.raw - beforeSize.raw), kb(manageSize.gzip - beforeSize.gzip)],
          ],
        ),
      );
      say();
      say("Each of middy's HTTP packages alone, over a handler of @middy/core alone (fresh process, median):");
      say();
      const probeRows = Object.entries(MIDDY_PROBES)
        .filter(([, pkg]) => pkg)
        .map(([key, pkg]) => [
          pkg,
          ms(med(key) - med('middy-core'), 2),
          ms(cpuMed(key) - cpuMed('middy-core'), 2),
          kb(size(bundles[key]!.file).raw - size(bundles['middy-core']!.file).raw),
        ]);
      say(table(['package', 'cold wall', 'import() CPU', 'bundle raw'], probeRows));
      say();
      compared = {
        before: { wallMs: med('before'), importCpuMs: cpuMed('before'), warmOverheadMs: beforeOverhead, size: beforeSize },
        after: { wallMs: med('manage'), importCpuMs: cpuMed('manage'), warmOverheadMs: warmOverhead, size: manageSize },
        middy: Object.fromEntries(probeRows.map((row) => [row[0], row.slice(1)])),
      };
    }
    say('### Targets');
    say();
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    say(
      table(
        ['target', 'measured', ''],
        [
          [`cold init ≤ ${TARGETS.coldRatio}× baseline`, `${ratio(coldRatio)} (${ratio(coldAboveFloorRatio)} above floor)`, verdict(coldRatio <= TARGETS.coldRatio)],
          [`cold init ≤ ${TARGETS.adoptionColdRatio}× baseline (issue 10: the libraries' floor)`, ratio(coldRatio), verdict(coldRatio <= TARGETS.adoptionColdRatio)],
          [`stricter: cold init ≤ ${TARGETS.leanColdRatio}× the lean baseline (only the libraries manage uses now)`, `${ratio(leanColdRatio)} (import() CPU ${ratio(cpuMed('manage') / cpuMed('lean'))})`, verdict(leanColdRatio <= TARGETS.leanColdRatio)],
          [`first invocation ≤ ${TARGETS.firstRatio}× baseline`, `${ratio(firstRatio)} (CPU ${ratio(firstCpuRatio)}; ${ratio(firstAuditRatio)} vs the same 3 calls)`, verdict(firstRatio <= TARGETS.firstRatio)],
          [`warm overhead < ${TARGETS.warmOverheadMs} ms median`, ms(warmOverhead, 3), verdict(warmOverhead < TARGETS.warmOverheadMs)],
          [`bundle < ${kb(TARGETS.bundleBytes)} minified`, kb(manageSize.raw), verdict(manageSize.raw < TARGETS.bundleBytes)],
          [`bundle ≤ ${kb(TARGETS.adoptionBundleBytes)} (issue 10)`, kb(manageSize.raw), verdict(manageSize.raw <= TARGETS.adoptionBundleBytes)],
        ],
      ),
    );
    say();
    say(`Bench wall time: ${((Date.now() - wallStarted) / 1000).toFixed(0)} s; 1-minute load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after (${cpu.length} cores).`);

    Object.assign(json, {
      machine: { cpu: cpu[0]?.model, cores: cpu.length, node: process.version },
      cold: { wall, imports, importCpu, coldRatio, coldAboveFloorRatio, leanColdRatio },
      first: { ...first, firstRatio, firstCpuRatio, firstAuditRatio },
      loading,
      warm: { handlerMedianMs: warmHandler, directMedianMs: warmDirect, overheadMs: warmOverhead },
      throughput,
      sizes: { manage: manageSize, baseline: baselineSize, lean: leanSize, largest: largestInputs(bundles.manage!, 20) },
      cli: { line: cliLine, medianMs: cliMedian },
      ...(compared ? { compared } : {}),
    });
    if (flags.json) await writeFile(resolve(flags.json), `${JSON.stringify(json, null, 2)}\n`);
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

