#!/usr/bin/env node
/**
 * Builds what the package publishes:
 *
 *   dist/src/…     the library as ES modules with .d.ts (tsc -p tsconfig.build.json),
 *                  `import 'serverless-middle-management'` and `…/testing`
 *   dist/plugin/…  the Serverless Framework plugin (same tsc run, when plugin/ exists)
 *   dist/cjs/…     the CommonJS entries for `require()` (one esbuild bundle of both
 *                  entries, so that they share one copy of the error classes; the ESM-only
 *                  @middy/core is bundled in, every other dependency stays a dependency)
 *                  and a copy of the declarations that TypeScript reads as CommonJS
 *   dist/cli/…     the mm CLI (scripts/build-cli.mjs)
 *   dist/local/…   the local stack of `middle-management dev` (scripts/build-local.mjs)
 *
 *   node scripts/build.mjs [--quiet]
 *
 * Runs from `prepare` (after `npm ci`/`npm install` in this repository, and before
 * `npm pack`). Where the sources or TypeScript are absent it does nothing.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { quiet: { type: 'boolean' } } });
const log = (text) => values.quiet || process.stderr.write(`build: ${text}\n`);
const dist = join(root, 'dist');
const require = createRequire(join(root, 'package.json'));

if (!existsSync(join(root, 'src', 'index.ts'))) {
  log('no src/ here; nothing to build');
  process.exit(0);
}
let tsc;
let esbuild;
try {
  tsc = require.resolve('typescript/bin/tsc');
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('build: typescript and esbuild are needed (npm ci installs them)\n');
  process.exit(1);
}

const started = Date.now();
for (const dir of ['src', 'plugin', 'cjs', 'local']) rmSync(join(dist, dir), { recursive: true, force: true });

// 1. ES modules and declarations.
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

// 2. CommonJS: one bundle, two thin entries, declarations under a `"type": "commonjs"` folder.
const cjs = join(dist, 'cjs');
const { dependencies = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const esmOnly = Object.keys(dependencies).filter((name) => name.startsWith('@middy/'));
await esbuild.build({
  stdin: {
    contents: "export * as main from './src/index.ts';\nexport * as testing from './src/testing/index.ts';\n",
    resolveDir: root,
    sourcefile: 'cjs-entry.ts',
    loader: 'ts',
  },
  outfile: join(cjs, 'bundle.js'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // Error names are the contract: keep class names as written.
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
  external: Object.keys(dependencies).filter((name) => !esmOnly.includes(name)).flatMap((name) => [name, `${name}/*`]),
});
writeFileSync(join(cjs, 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
writeFileSync(join(cjs, 'index.js'), "'use strict';\nmodule.exports = require('./bundle.js').main;\n");
mkdirSync(join(cjs, 'testing'), { recursive: true });
writeFileSync(join(cjs, 'testing', 'index.js'), "'use strict';\nmodule.exports = require('../bundle.js').testing;\n");
writeFileSync(join(cjs, 'typebox.js'), "'use strict';\nmodule.exports = require('@sinclair/typebox');\n");
for (const file of walk(join(dist, 'src'))) {
  if (!file.endsWith('.d.ts')) continue;
  const target = join(cjs, relative(join(dist, 'src'), file));
  mkdirSync(dirname(target), { recursive: true });
  cpSync(file, target);
}

// 3. The CLI, and the local stack `middle-management dev` loads (bundled: its needs are no dependency).
for (const script of ['build-cli.mjs', 'build-local.mjs']) {
  if (existsSync(join(root, 'scripts', script))) {
    execFileSync(process.execPath, [join(root, 'scripts', script), ...(values.quiet ? ['--quiet'] : [])], { stdio: 'inherit', cwd: root });
  }
}
log(`library, CommonJS entries, CLI and local stack built in ${Date.now() - started} ms`);

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else yield path;
  }
}
