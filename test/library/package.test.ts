/**
 * The package as a user gets it: packed with `npm pack` (dist/ must be built: `npm run
 * build`, which `npm ci` runs through `prepare`), unpacked into fresh projects whose
 * other dependencies are this repository's node_modules (linked; @types/aws-lambda
 * left out), then type-checked with strict settings under each module setting and run.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const work = mkdtempSync(join(tmpdir(), 'mm-library-'));
let packed: { files: { path: string }[]; filename: string };
const unpacked = join(work, 'package');

before(async () => {
  if (!existsSync(join(root, 'dist/src/index.js')) || !existsSync(join(root, 'dist/cjs/index.js'))) {
    await run(process.execPath, [join(root, 'scripts/build.mjs'), '--quiet'], { cwd: root });
  }
  // Scripts off: packing must not rebuild (CI built once); what is in dist/ is what ships.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root });
  packed = JSON.parse(stdout)[0];
  mkdirSync(unpacked);
  await run('tar', ['-xzf', join(work, packed.filename), '-C', unpacked, '--strip-components=1']);
});

after(() => rmSync(work, { recursive: true, force: true }));

describe('published contents', () => {
  it('holds the compiled library, its declarations, the CLI and the docs; no sources, tests, example or patches', () => {
    const files = packed.files.map((f) => f.path);
    for (const required of [
      'package.json',
      'README.md',
      'bin/mm.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/testing/index.js',
      'dist/src/testing/index.d.ts',
      'dist/cjs/index.js',
      'dist/cjs/index.d.ts',
      'dist/cjs/testing/index.js',
      'dist/src/typebox.js',
      'dist/cjs/typebox.js',
      'dist/cli/main.mjs',
      'docs/api.md',
    ]) {
      assert.ok(files.includes(required), `${required} is published`);
    }
    const unwanted = files.filter(
      (file) =>
        /^(src|test|example|local|patches|scripts|bench|types|cli|plugin)\//.test(file) ||
        (file.endsWith('.ts') && !file.endsWith('.d.ts')) ||
        /(^|\/)(tsconfig[^/]*\.json|\.npmrc|package-lock\.json)$/.test(file),
    );
    assert.deepEqual(unwanted, []);
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8'));
    assert.equal(manifest.scripts?.prepare !== undefined && files.includes('scripts/prepare.mjs'), false, 'prepare needs nothing shipped');
    assert.equal(manifest.scripts?.postinstall, undefined, 'no postinstall');
    for (const name of ['commander', '@clack/prompts', 'dynalite', 'serverless-offline', 'jose', 'esbuild', 'picocolors']) {
      assert.equal(manifest.dependencies?.[name], undefined, `${name} is no runtime dependency`);
    }
  });
});

describe('peer dependencies', () => {
  const PEERS = ['serverless', 'serverless-esbuild', 'serverless-offline'];
  // semver as npm itself checks ranges (a dependency of npm's tree here, untyped).
  const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean };

  it('declares the Framework, serverless-esbuild and serverless-offline as optional peers, never as dependencies', () => {
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8'));
    assert.deepEqual(Object.keys(manifest.peerDependencies).sort(), PEERS);
    for (const name of PEERS) {
      assert.deepEqual(manifest.peerDependenciesMeta?.[name], { optional: true }, `${name} is optional`);
      assert.equal(manifest.dependencies?.[name], undefined);
    }
  });

  it('in ranges that the versions this repository and example/ install satisfy (osls aliased as serverless included)', () => {
    const { peerDependencies: peers } = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8'));
    for (const project of [root, join(root, 'example')]) {
      const { devDependencies } = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'));
      for (const name of PEERS) {
        // "npm:osls@4.3.1": npm checks the aliased package's version against the peer's range.
        const version = String(devDependencies[name]).replace(/^npm:[^@]+@/, '');
        assert.ok(semver.satisfies(version, peers[name]), `${project}: ${name} ${version} is outside ${peers[name]}`);
      }
    }
    const installed = JSON.parse(readFileSync(join(root, 'node_modules', 'serverless', 'package.json'), 'utf8'));
    assert.ok(semver.satisfies(installed.version, peers.serverless), `${installed.name}@${installed.version}`);
  });

  it('serverless: the v3 line and osls (3.x, 4.x); not v2, whose plugin API the plugin does not use', () => {
    const { peerDependencies: peers } = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8'));
    for (const version of ['3.0.0', '3.38.0', '3.77.1', '4.2.0', '4.3.1']) assert.ok(semver.satisfies(version, peers.serverless), version);
    for (const version of ['2.72.3', '5.0.0']) assert.ok(!semver.satisfies(version, peers.serverless), version);
    assert.ok(semver.satisfies('1.50.0', peers['serverless-esbuild']) && !semver.satisfies('2.0.0', peers['serverless-esbuild']));
    assert.ok(semver.satisfies('14.0.0', peers['serverless-offline']) && !semver.satisfies('13.9.0', peers['serverless-offline']));
  });
});

describe('public declarations', () => {
  it('name no types of packages a service lacks (aws-lambda, middy) from either entry', () => {
    for (const flavour of ['src', 'cjs']) {
      const seen = new Set<string>();
      const pending = [join(unpacked, 'dist', flavour, 'index.d.ts'), join(unpacked, 'dist', flavour, 'testing/index.d.ts')];
      while (pending.length > 0) {
        const file = pending.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
        for (const [, specifier] of text.matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
          if (specifier!.startsWith('.')) pending.push(join(dirname(file), specifier!.replace(/\.js$/, '.d.ts')));
          else assert.ok(['@sinclair/typebox', 'node:crypto'].includes(specifier!), `${file} imports ${specifier}`);
        }
      }
    }
  });
});

type Setting = 'bundler' | 'node16-esm' | 'node16-cjs';

/** A service of the kind the README describes: a command importing its own module, a handler, a unit test. */
function writeFixture(dir: string, setting: Setting, packageDir: string): void {
  mkdirSync(join(dir, 'src/commands'), { recursive: true });
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (entry === '.bin' || entry.startsWith('.')) continue;
    if (entry === '@types') {
      mkdirSync(join(dir, 'node_modules/@types'));
      for (const types of readdirSync(join(root, 'node_modules/@types'))) {
        if (types !== 'aws-lambda') symlinkSync(join(root, 'node_modules/@types', types), join(dir, 'node_modules/@types', types));
      }
      continue;
    }
    symlinkSync(join(root, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
  // A copy, not a link: its own dependencies must resolve from the project's node_modules.
  cpSync(packageDir, join(dir, 'node_modules/serverless-middle-management'), { recursive: true });
  const cjs = setting === 'node16-cjs';
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `fixture-${setting}`, private: true, type: cjs ? 'commonjs' : 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        ...(setting === 'bundler' ? { module: 'preserve', moduleResolution: 'bundler', noEmit: true } : { module: 'node16', moduleResolution: 'node16' }),
        strict: true,
        exactOptionalPropertyTypes: true,
        noPropertyAccessFromIndexSignature: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: true,
        types: ['node'],
        rootDir: 'src',
        outDir: 'dist',
      },
      include: ['src'],
    }),
  );
  writeFileSync(join(dir, 'src/greetings.ts'), 'export const greeting = (name: string): string => `Hello, ${name}!`;\n');
  writeFileSync(
    join(dir, 'src/commands/greet.ts'),
    `import { Type, defineCommand, type Static } from 'serverless-middle-management';
import * as TypeBox from 'serverless-middle-management/typebox';
import { greeting } from '../greetings.js';

const args = Type.Object({
  name: Type.String({ minLength: 1 }),
  times: Type.Optional(Type.Integer({ minimum: 1, maximum: 3 })),
  tags: Type.Optional(TypeBox.Record(TypeBox.String(), TypeBox.String())),
});
export type GreetArgs = Static<typeof args>;

export default defineCommand({
  description: 'Greets someone',
  args,
  sensitive: ['name'],
  timeLimitMs: 5000,
  run({ name, times, tags }, ctx) {
    const typed: string = name;
    const tagged: Record<string, string> | undefined = tags;
    const count: number | undefined = times;
    // @ts-expect-error run() arguments are typed from the schema, not any
    const wrong: number = name;
    ctx.log(typed, ctx.actor.kind, ctx.signal.aborted, tagged);
    return { greeting: greeting(typed).repeat(count ?? 1), wrong };
  },
  plan: ({ name }) => ({ wouldGreet: name }),
});
`,
  );
  writeFileSync(
    join(dir, 'src/handler.ts'),
    `import { createManageHandler, type LambdaContext, type ManageHandler } from 'serverless-middle-management';
import greet from './commands/greet.js';

export const handler: ManageHandler = createManageHandler({
  commands: { greet, later: () => import('./commands/greet.js') },
});
export const call = (event: unknown, context: LambdaContext) => handler(event, context);
`,
  );
  writeFileSync(
    join(dir, 'src/check.ts'),
    `import { CommandFailed, InvalidArguments, defineCommand, Type } from 'serverless-middle-management';
import { createTestHandler, runCommand } from 'serverless-middle-management/testing';
import greet from './commands/greet.js';

async function main(): Promise<void> {
  const direct = await runCommand(greet, { name: 'Ada', times: 2 });
  const text: string = direct.result.greeting;
  const service = await createTestHandler({ commands: { greet, later: () => import('./commands/greet.js') } });
  const lazy = await service.post('later', { data: { name: 'Bob' } });
  const invalid = await runCommand(greet, { name: '' }).catch((error: unknown) => error instanceof InvalidArguments);
  const boom = defineCommand({ description: 'x', args: Type.Object({}), run: () => { throw new Error('boom'); } });
  const failed = await runCommand(boom).catch((error: unknown) => error instanceof CommandFailed && error.message === 'boom');
  console.log(JSON.stringify({ text, lazy: [lazy.status, lazy.body.result], invalid, failed }));
}
void main();
`,
  );
}

async function typecheck(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [tsc, '-p', dir], { cwd: dir });
    return { code: 0, output: stdout };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, output: failure.stdout + failure.stderr };
  }
}

const expected = { text: 'Hello, Ada!Hello, Ada!', lazy: [200, { greeting: 'Hello, Bob!', wrong: 'Bob' }], invalid: true, failed: true };

describe('a strict TypeScript service (strict, exactOptionalPropertyTypes, noPropertyAccessFromIndexSignature, skipLibCheck)', () => {
  for (const setting of ['bundler', 'node16-esm', 'node16-cjs'] as const) {
    it(`type-checks${setting === 'bundler' ? '' : ', compiles and runs'} under ${setting}`, async () => {
      const dir = join(work, setting);
      writeFixture(dir, setting, unpacked);
      const { code, output } = await typecheck(dir);
      assert.equal(code, 0, output);
      if (setting === 'bundler') return;
      const { stdout } = await run(process.execPath, ['dist/check.js'], { cwd: dir });
      assert.deepEqual(JSON.parse(stdout), expected);
    });
  }

  it('plain node imports it, and requires it', async () => {
    const dir = join(work, 'node16-esm');
    const { stdout: imported } = await run(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('serverless-middle-management'); const t = await import('serverless-middle-management/testing'); console.log(typeof m.createManageHandler, typeof m.Type.Object, typeof t.runCommand);"],
      { cwd: dir },
    );
    assert.equal(imported.trim(), 'function function function');
    const { stdout: required } = await run(
      process.execPath,
      ['-e', "const m = require('serverless-middle-management'); const t = require('serverless-middle-management/testing'); console.log(typeof m.createManageHandler, new m.CommandFailed('x').name, typeof t.runCommand);"],
      { cwd: dir },
    );
    assert.equal(required.trim(), 'function CommandFailed function');
  });

  it('would not type-check in a CommonJS service if the package were ESM-only (why it ships CommonJS entries too)', async () => {
    const esmOnly = join(work, 'esm-only-package');
    cpSync(unpacked, esmOnly, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(esmOnly, 'package.json'), 'utf8'));
    delete manifest.main;
    delete manifest.types;
    for (const entry of ['.', './testing']) manifest.exports[entry] = manifest.exports[entry].import;
    writeFileSync(join(esmOnly, 'package.json'), JSON.stringify(manifest));
    const dir = join(work, 'esm-only-cjs');
    writeFixture(dir, 'node16-cjs', esmOnly);
    const { code, output } = await typecheck(dir);
    assert.notEqual(code, 0);
    assert.match(output, /TS1479/);
  });
});
