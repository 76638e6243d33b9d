/**
 * Helpers of the plugin tests: build the plugin from source into a fixture's
 * node_modules (as `serverless-middle-management`, with the `./plugin` export
 * of the package), write fixture services and run `serverless package` offline:
 * empty HOME, no credentials, no profile.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const serverlessBin = join(root, 'node_modules', 'serverless', 'bin', 'serverless.js');

export type Template = {
  Resources: Record<string, { Type: string; Properties: any; DeletionPolicy?: string; UpdateReplacePolicy?: string; DependsOn?: string | string[] }>;
  Outputs?: Record<string, unknown>;
};

/**
 * `<dir>/node_modules/serverless-middle-management`: the plugin bundled from
 * plugin/index.ts, behind the same `exports` entry the published package has.
 */
export async function installPlugin(dir: string): Promise<string> {
  const pkg = join(dir, 'node_modules', 'serverless-middle-management');
  await mkdir(join(pkg, 'dist', 'plugin'), { recursive: true });
  await writeFile(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'serverless-middle-management', type: 'module', exports: { './plugin': './dist/plugin/index.js' } }),
  );
  await build({
    entryPoints: [join(root, 'plugin', 'index.ts')],
    outfile: join(pkg, 'dist', 'plugin', 'index.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'silent',
  });
  return pkg;
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A clean environment: PATH and an empty HOME only (plus `extra`). */
export async function cleanEnv(work: string, extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const home = join(work, 'home');
  await mkdir(home, { recursive: true });
  return { PATH: process.env.PATH, HOME: home, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', ...extra };
}

export interface PackageResult {
  ok: boolean;
  output: string;
  template?: Template;
}

/** `serverless package` in `dir`; never throws for a failed run (the output says why). */
export async function packageService(dir: string, work: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<PackageResult> {
  const out = join(dir, '.out');
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [serverlessBin, 'package', '--package', out, ...args], {
      cwd: dir,
      env: await cleanEnv(work, env),
      maxBuffer: 16 * 1024 * 1024,
      timeout: 120_000,
    });
    const template = JSON.parse(await readFile(join(out, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
    return { ok: true, output: stdout + stderr, template };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}${failed.message}` };
  }
}

export function ofType(template: Template, type: string) {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}
