/**
 * `npm start` in this repository: `middle-management dev` (cli/commands/dev.ts →
 * local/dev.ts), run from the sources in the example service's folder, exactly
 * as a user runs it in theirs. Extra arguments go to `serverless offline start`
 * (e.g. `npm start -- --reloadHandler`).
 *
 * The example depends on this package as a user's service does. After `npm ci`
 * it finds the package through a link example/node_modules/serverless-middle-management
 * → this repository, made here if nothing is installed there (`npm run
 * example:install` installs the packed tarball instead, as CI does).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const exampleDir = join(root, 'example');

/**
 * Links the package into the example's node_modules unless something is there already.
 * A packed tarball installed there (`npm run example:install`) is refreshed first when the
 * sources changed since, so that `npm start` never serves a stale plugin or library.
 */
export function linkPackageIntoExample(): void {
  const target = join(exampleDir, 'node_modules', 'serverless-middle-management');
  if (existsSync(join(exampleDir, 'node_modules', '.middle-management.json'))) {
    execFileSync(process.execPath, [join(root, 'scripts', 'example.mjs'), 'install', '--quiet'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    return;
  }
  let present = false;
  try {
    lstatSync(target);
    present = true;
  } catch {
    // absent
  }
  if (present) return;
  mkdirSync(dirname(target), { recursive: true });
  symlinkSync(relative(dirname(target), root), target, 'dir');
}

/** Runs the CLI (`mm`/`middle-management`) from its sources in the example's folder. */
export async function runCliInExample(args: string[]): Promise<void> {
  if (!existsSync(join(exampleDir, 'serverless.yml'))) throw new Error(`${exampleDir} has no serverless.yml`);
  linkPackageIntoExample();
  process.chdir(exampleDir);
  process.argv = [process.argv[0]!, 'middle-management', ...args];
  await import(pathToFileURL(join(root, 'cli', 'main.ts')).href);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runCliInExample(['dev', ...process.argv.slice(2)]);
}
