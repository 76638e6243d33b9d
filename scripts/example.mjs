#!/usr/bin/env node
/**
 * The example service (example/) as a user of the package: it installs the packed
 * tarball, never a path into this repository's sources.
 *
 *   node scripts/example.mjs install [--quiet]   build if stale, pack, install into example/
 *   node scripts/example.mjs typecheck          type-check example/ with its strict tsconfig
 *   node scripts/example.mjs test               run example/test with the example's own tsx
 *   node scripts/example.mjs check   [--quiet]   install, typecheck, test
 *
 * `install` is idempotent and skips what is up to date:
 *  1. builds (scripts/build.mjs) when a source is newer than dist/;
 *  2. packs into .pack/serverless-middle-management.tgz (scripts off: dist/ is what ships);
 *  3. installs example/'s dependencies with `npm ci` when example/package-lock.json is newer
 *     than the last install. The lock pins every third-party package; the package itself is
 *     `file:../.pack/serverless-middle-management.tgz` there WITHOUT an `integrity` (each
 *     build's tarball differs, and npm ci would refuse a changed one), so `npm ci` installs
 *     whatever tarball .pack/ holds. Later, a changed tarball alone is reinstalled with
 *     `npm install --no-save` (the lock is not rewritten), skipped when its hash is the one
 *     recorded in example/node_modules/.middle-management.json.
 * Regenerating the lock (`npm install` in example/) adds an integrity to that entry: remove it.
 *
 * `npm run example:install` runs it; `npm start` and `npm run bench` need it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const example = join(root, 'example');
const packDir = join(root, '.pack');
const tarball = join(packDir, 'serverless-middle-management.tgz');
const stampFile = join(example, 'node_modules', '.middle-management.json');
const { values, positionals } = parseArgs({ allowPositionals: true, options: { quiet: { type: 'boolean' } } });
const log = (text) => values.quiet || process.stderr.write(`example: ${text}\n`);
const npm = (args, cwd) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, stdio: values.quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });

const command = positionals[0] ?? 'install';
const steps = { install: [install], typecheck: [typecheck], test: [test], check: [install, typecheck, test] }[command];
if (!steps) {
  process.stderr.write('usage: node scripts/example.mjs install|typecheck|test|check [--quiet]\n');
  process.exit(2);
}
for (const step of steps) step();

function install() {
  // 1. Build when stale.
  const built = join(root, 'dist', 'src', 'index.js');
  const sources = ['src', 'plugin', 'cli', 'local', 'package.json', 'tsconfig.build.json', 'scripts/build.mjs'].map((p) => join(root, p));
  if (!existsSync(built) || newest(sources) > statSync(built).mtimeMs) {
    log('building the package');
    execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--quiet'], { cwd: root, stdio: 'inherit' });
  }

  // 2. Pack what dist/ holds.
  mkdirSync(packDir, { recursive: true });
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--loglevel=error', '--pack-destination', packDir], { cwd: root, encoding: 'utf8' }),
  );
  renameSync(join(packDir, packed.filename), tarball);
  const tarballHash = createHash('sha256').update(readFileSync(tarball)).digest('hex');

  // 3. Install: third-party dependencies from the lock, then the tarball.
  // npm writes node_modules/.package-lock.json after each install: older than the lock means stale.
  const hiddenLock = join(example, 'node_modules', '.package-lock.json');
  const lock = join(example, 'package-lock.json');
  const stamp = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, 'utf8')) : {};
  let fresh = false;
  if (!existsSync(hiddenLock) || statSync(hiddenLock).mtimeMs < statSync(lock).mtimeMs) {
    log('installing the example’s dependencies (npm ci)');
    npm(['ci'], example);
    fresh = true;
  } else {
    log('example dependencies are up to date');
  }
  const installed = join(example, 'node_modules', 'serverless-middle-management', 'package.json');
  if (!fresh && (stamp.tarball !== tarballHash || !existsSync(installed))) {
    log(`installing ${packed.filename} (${Math.round(packed.size / 1024)} KiB) into example/`);
    npm(['install', '--no-save', '--prefer-offline', tarball], example);
  } else {
    log('the packed package is installed and up to date');
  }
  writeFileSync(stampFile, `${JSON.stringify({ tarball: tarballHash, version: packed.version }, null, 2)}\n`);
}

function typecheck() {
  log('type-checking example/ (strict tsconfig, the example’s own TypeScript)');
  execFileSync(process.execPath, [join(example, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', example], { cwd: example, stdio: 'inherit' });
}

function test() {
  log('running example/test');
  const tests = readdirSync(join(example, 'test')).filter((f) => f.endsWith('.test.ts')).map((f) => join('test', f));
  // The example's own tsx (its devDependency): no tsconfig paths, so imports resolve to the installed tarball.
  execFileSync(process.execPath, ['--import', 'tsx', '--test', ...tests], { cwd: example, stdio: 'inherit' });
}

/** The latest modification time under these paths (files and folders, recursively). */
function newest(paths) {
  let latest = 0;
  const visit = (path) => {
    if (!existsSync(path)) return;
    const stats = statSync(path);
    latest = Math.max(latest, stats.mtimeMs);
    if (stats.isDirectory()) for (const name of readdirSync(path)) if (name !== 'node_modules') visit(join(path, name));
  };
  paths.forEach(visit);
  return latest;
}
