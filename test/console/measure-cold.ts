/**
 * What the console costs the `manage` function (not a test: run it by hand).
 *
 *   node --import tsx test/console/measure-cold.ts [runs=15]
 *
 * Builds the example service's `manage` bundle as `serverless package` does
 * (bench/esbuild-options.ts), once as is and once with src/console/serve.ts
 * replaced by an empty module, then loads each in a fresh `node` (bench/probes/cold.mjs)
 * alternately and prints the medians; and the page's weight, raw and gzipped.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import { serviceBuild } from '../../bench/esbuild-options.js';
import { serveConsole } from '../../src/console/serve.js';
import { scriptGzip, styleGzip } from '../../src/console/assets.js';

/** The assets are stored gzip-compressed (base64); the page's weight is reckoned on their text. */
const [script, style] = [scriptGzip, styleGzip].map((base64) => gunzipSync(Buffer.from(base64, 'base64')).toString('utf8')) as [string, string];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const example = join(root, 'example');
const runs = Number(process.argv[2] ?? 15);
const out = mkdtempSync(join(tmpdir(), 'mm-console-cold-'));

const withoutConsole: Plugin = {
  name: 'without-console',
  setup(b) {
    b.onResolve({ filter: /console\/serve\.js$/ }, (args) => ({ path: args.path, namespace: 'empty' }));
    b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'export function serveConsole() { throw new Error("no console"); }', loader: 'js' }));
  },
};

async function bundle(name: string, plugins: Plugin[]): Promise<string> {
  const { options } = serviceBuild(example);
  await build({ ...options, absWorkingDir: example, entryPoints: { [name]: join(example, 'handlers', 'manage.ts') }, outdir: join(out, name), logLevel: 'warning', plugins, sourcemap: false });
  return join(out, name, `${name}.mjs`);
}

const bundles = { with: await bundle('with', []), without: await bundle('without', [withoutConsole]) };
const env = {
  PATH: process.env.PATH,
  MANAGE_ALLOW_LIST: 'noop,echo,sleep,fail',
  MANAGE_JWT_ISSUER: 'http://127.0.0.1:9',
  MANAGE_JWT_AUDIENCE: 'bench',
  MANAGE_AUDIT_TABLE: 'bench',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'x',
  AWS_SECRET_ACCESS_KEY: 'x',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  BENCH_FD3: '1',
};
const probe = join(root, 'bench', 'probes', 'cold.mjs');
const samples: Record<string, { importMs: number[]; importCpuMs: number[] }> = { with: { importMs: [], importCpuMs: [] }, without: { importMs: [], importCpuMs: [] } };
for (let i = 0; i < runs; i++) {
  for (const name of i % 2 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
    const result = spawnSync(process.execPath, [probe, bundles[name]], { env, stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
    const data = JSON.parse(result.output[3]!.toString());
    samples[name]!.importMs.push(data.importMs);
    samples[name]!.importCpuMs.push(data.importCpuMs);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const html = (await serveConsole({ method: 'GET', path: '/__manage__/console' }, {})).body;
const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const weight = (text: string) => `${kb(Buffer.byteLength(text))} raw, ${kb(gzipSync(text).length)} gzip`;
process.stdout.write(
  [
    `cold import of the manage bundle, median of ${runs} fresh node processes each:`,
    ...(['without', 'with'] as const).map(
      (name) => `  ${name.padEnd(7)} console: ${kb(statSync(bundles[name]).size).padStart(10)}  import ${median(samples[name]!.importMs).toFixed(1)} ms wall, ${median(samples[name]!.importCpuMs).toFixed(1)} ms CPU`,
    ),
    'page weight (what a browser downloads on first visit):',
    `  HTML    ${weight(html)}`,
    `  app.js  ${weight(script)}`,
    `  app.css ${weight(style)}`,
    `  total   ${kb(Buffer.byteLength(html + script + style))} raw, ${kb(gzipSync(html).length + gzipSync(script).length + gzipSync(style).length)} gzip`,
    '',
  ].join('\n'),
);
