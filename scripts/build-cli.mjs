#!/usr/bin/env node
/**
 * Bundles the `mm` CLI (cli/main.ts) into plain ES modules under dist/cli/,
 * so that it starts in plain Node.js without a TypeScript loader.
 *
 *   node scripts/build-cli.mjs [--outdir DIR] [--quiet]
 *
 * Runs from `npm run build` (scripts/build.mjs, which `prepare` runs after `npm ci`/`npm install`) and `npm run build:cli`.
 * Where the sources or esbuild are absent (an installed package that ships
 * dist/ already), it does nothing.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' }, quiet: { type: 'boolean' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist', 'cli'));
const entry = join(root, 'cli', 'main.ts');
const log = (text) => values.quiet || process.stderr.write(`build-cli: ${text}\n`);

if (!existsSync(entry)) {
  log('no cli/ sources here; nothing to build');
  process.exit(0);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  if (existsSync(join(outdir, 'main.mjs'))) {
    log('esbuild is not installed; keeping the existing build');
    process.exit(0);
  }
  process.stderr.write('build-cli: esbuild is not installed (npm ci installs it); cannot build the mm CLI\n');
  process.exit(1);
}

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
rmSync(outdir, { recursive: true, force: true });
const started = Date.now();
const result = await esbuild.build({
  entryPoints: { main: entry },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  minify: true,
  legalComments: 'none',
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
  define: { __MM_VERSION__: JSON.stringify(version) },
  // commander is CommonJS and requires Node built-ins; give the ESM bundle a `require`.
  banner: { js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);" },
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
log(`built ${Object.keys(result.metafile.outputs).length} files (${Math.round(bytes / 1024)} KiB) in ${outdir} in ${Date.now() - started} ms`);
