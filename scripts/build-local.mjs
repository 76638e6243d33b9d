#!/usr/bin/env node
/**
 * Bundles the local stack of `middle-management dev` (local/dev.ts: dynalite,
 * the development token issuer, the AWS SDK's DynamoDB client) into one ES
 * module, dist/local/dev.mjs, that the CLI loads only when `dev` runs. dynalite
 * and jose are development dependencies of this package, bundled here, never
 * runtime ones: nothing of them reaches a user's Lambda bundle (which imports
 * dist/src only). The package's runtime dependencies (the DynamoDB client) stay imports.
 *
 *   node scripts/build-local.mjs [--outdir DIR] [--quiet]
 *
 * dynalite's on-disk store (`level` → classic-level) is a native addon; the
 * stack runs dynalite in memory, so `level` is replaced by local/level-stub.cjs.
 * Where the sources or esbuild are absent (an installed package), it does nothing.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' }, quiet: { type: 'boolean' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist', 'local'));
const entry = join(root, 'local', 'dev.ts');
const log = (text) => values.quiet || process.stderr.write(`build-local: ${text}\n`);

if (!existsSync(entry)) {
  log('no local/ sources here; nothing to build');
  process.exit(0);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  if (existsSync(join(outdir, 'dev.mjs'))) {
    log('esbuild is not installed; keeping the existing build');
    process.exit(0);
  }
  process.stderr.write('build-local: esbuild is not installed (npm ci installs it); cannot build the local stack\n');
  process.exit(1);
}

/**
 * dynalite loads its actions with `require('./actions/' + action)`: esbuild bundles
 * every file of those folders but keys them with their `.js`, so the lookup
 * needs the extension too.
 */
const dynaliteActions = {
  name: 'dynalite-actions',
  setup(build) {
    build.onLoad({ filter: /[\\/]dynalite[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const patched = source.replace(/require\('\.\/(actions|validations)\/' \+ action\)/g, "require('./$1/' + action + '.js')");
      if (patched === source) throw new Error(`build-local: dynalite's action loading changed (${args.path}); update the dynalite-actions plugin`);
      return { contents: patched, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

const { dependencies = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
rmSync(outdir, { recursive: true, force: true });
const started = Date.now();
const result = await esbuild.build({
  entryPoints: { dev: entry },
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  minify: true,
  // Error names are how the CLI tells a configuration error from a crash.
  keepNames: true,
  legalComments: 'none',
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
  alias: { level: join(root, 'local', 'level-stub.cjs') },
  // The package's runtime dependencies are installed beside it anyway: not bundled twice.
  external: Object.keys(dependencies).flatMap((name) => [name, `${name}/*`]),
  plugins: [dynaliteActions],
  // CommonJS dependencies (dynalite) require Node built-ins: give the ESM bundle a `require`.
  banner: { js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);" },
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
log(`built ${Object.keys(result.metafile.outputs).length} file (${Math.round(bytes / 1024)} KiB) in ${outdir} in ${Date.now() - started} ms`);
