/**
 * `node --import tsx bench/middy-cost.ts`: what each of middy's HTTP packages
 * used by src/handler/http.ts costs, measured in one process so that a loaded
 * machine disturbs it less than fresh-process timings (bench.ts --compare):
 *
 * - load: each package bundled alone with serverless.yml's esbuild options
 *   (as CommonJS, so that it can be evaluated again and again), then compiled
 *   and run N times, interleaved, each time as new source (V8's compilation
 *   cache would otherwise make every load after the first free); the figure
 *   is the median over a bundle of @middy/core alone.
 * - warm: one request through the middleware (or the router) as http.ts uses
 *   it, median over many calls.
 */
import { createRequire } from 'node:module';
import { runInThisContext } from 'node:vm';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { serviceBuild } from './esbuild-options.js';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import { resolveRoute } from '../src/handler/http-routes.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LOADS = Number(process.argv[2] ?? 300);
const CALLS = Number(process.argv[3] ?? 20_000);

const packages: Record<string, string> = {
  core: '',
  '@middy/http-router': '@middy/http-router',
  '@middy/http-header-normalizer': '@middy/http-header-normalizer',
  '@middy/http-json-body-parser': '@middy/http-json-body-parser',
};

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function bundle(pkg: string, entry?: string): Promise<string> {
  const { options } = serviceBuild(join(root, 'example'));
  const contents = pkg
    ? `import middy from '@middy/core';\nimport used from '${pkg}';\nexport const handler = middy().handler(() => typeof used);\n`
    : `import middy from '@middy/core';\nexport const handler = middy().handler(() => 'core');\n`;
  const result = await build({
    ...options,
    ...(entry ? { entryPoints: [entry], absWorkingDir: join(root, 'example') } : { stdin: { contents, resolveDir: root, loader: 'ts' as const } }),
    format: 'cjs',
    banner: {},
    outExtension: {},
    write: false,
    sourcemap: false,
    metafile: false,
    outdir: undefined,
    outfile: 'probe.cjs',
    logLevel: 'warning',
  });
  return result.outputFiles![0]!.text;
}

const requireFrom = createRequire(import.meta.url);
const codes: Record<string, string> = Object.fromEntries(await Promise.all(Object.entries(packages).map(async ([name, pkg]) => [name, await bundle(pkg)] as const)));
// With a tree of the code before a change (as for bench.ts --compare): both `manage` bundles, loaded the same way.
const compare = process.env.BENCH_COMPARE;
if (compare) {
  codes['manage, before'] = await bundle('', join(resolve(compare), 'example/handlers/manage.ts'));
  codes['manage, after'] = await bundle('', join(root, 'example/handlers/manage.ts'));
  Object.assign(process.env, {
    MANAGE_ALLOW_LIST: 'noop,echo,sleep,fail',
    MANAGE_JWT_ISSUER: 'https://issuer.example.com',
    MANAGE_JWT_AUDIENCE: 'bench',
    MANAGE_AUDIT_TABLE: 'bench',
    AWS_REGION: 'us-east-1',
  });
}
const loads: Record<string, number[]> = {};
for (let i = 0; i < LOADS; i++) {
  for (const [name, code] of Object.entries(codes)) {
    const module = { exports: {} as Record<string, unknown> };
    const started = performance.now();
    const fn = runInThisContext(`(function (module, exports, require) {${code}\n})\n//# ${name} ${i}`) as (m: unknown, e: unknown, r: unknown) => void;
    fn(module, module.exports, requireFrom);
    loads[name] ??= [];
    loads[name]!.push(performance.now() - started);
  }
}

const request = () => ({
  event: {
    headers: { Authorization: 'Bearer a.b.c', 'Content-Type': 'application/json', 'User-Agent': 'mm/1', Host: 'x.example.com', Accept: '*/*' },
    body: '{"data":{"message":"hello"}}',
    route: { kind: 'run' },
  },
});
const normalizer = httpHeaderNormalizer();
const parser = httpJsonBodyParser({ disableContentTypeCheck: true } as never);
const warm: Record<string, () => unknown> = {
  '@middy/http-router': () => resolveRoute('POST', '/__manage__/echo'),
  '@middy/http-header-normalizer': () => normalizer.before!(request() as never),
  '@middy/http-json-body-parser': () => parser.before!(request() as never),
};
const calls: Record<string, number[]> = {};
for (let i = 0; i < CALLS; i++) {
  for (const [name, call] of Object.entries(warm)) {
    const started = performance.now();
    await call();
    (calls[name] ??= []).push(performance.now() - started);
  }
}

const core = median(loads.core!);
console.log(`| package | load (compile + run), over @middy/core alone | bundle bytes over @middy/core alone | warm, one request |`);
console.log(`| --- | --- | --- | --- |`);
for (const name of Object.keys(warm)) {
  console.log(
    `| ${name} | ${(median(loads[name]!) - core).toFixed(3)} ms | ${codes[name]!.length - codes.core!.length} | ${(median(calls[name]!) * 1000).toFixed(1)} µs |`,
  );
}
if (compare) {
  const before = median(loads['manage, before']!);
  const after = median(loads['manage, after']!);
  console.log(`\nmanage bundle load (compile + run): before ${before.toFixed(2)} ms, after ${after.toFixed(2)} ms, after − before ${(after - before).toFixed(2)} ms; bytes ${codes['manage, before']!.length} → ${codes['manage, after']!.length}.`);
}
console.log(`\n@middy/core alone: ${core.toFixed(3)} ms to load; ${LOADS} loads and ${CALLS} calls each, interleaved, medians.`);
