/**
 * `middle-management dev` and `middle-management dev token` (CONTRACT §8): the
 * local stack for the Serverless service in the current folder. Only the
 * command line is declared here; the stack itself (dynalite, the dev issuer,
 * the AWS SDK) is local/dev.ts, bundled apart from the CLI into
 * dist/local/dev.mjs (scripts/build-local.mjs) and loaded only when it runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { errLine, writeSecretToStdout } from '../io.js';

type DevModule = typeof import('../../local/dev.js');

const PACKAGE = 'serverless-middle-management';

/** The package's root: the nearest folder above this file whose package.json is ours. */
function packageRoot(from: string): string | undefined {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === PACKAGE) return dir;
      } catch {
        // not ours; keep looking
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

async function loadStack(): Promise<DevModule> {
  const here = fileURLToPath(import.meta.url);
  // Run from the sources (tsx, in this repository): the stack's sources too.
  // The specifiers are computed, so that esbuild leaves the stack out of the CLI bundle.
  if (here.endsWith('.ts')) return (await import(pathToFileURL(join(dirname(here), '..', '..', 'local', 'dev.ts')).href)) as DevModule;
  const root = packageRoot(here);
  const built = root && join(root, 'dist', 'local', 'dev.mjs');
  if (!built || !existsSync(built)) {
    throw new Error(`the local stack is not built (${built ?? 'dist/local/dev.mjs'} is missing); in the package's repository run \`npm run build\``);
  }
  return (await import(pathToFileURL(built).href)) as DevModule;
}

/** A message for people, by kind of failure; the exit code is 1 (2 for usage). */
function reportFailure(error: unknown): number {
  const name = (error as { name?: string })?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'DevConfigError' || name === 'ConfigError' || (name === 'FunctionStartError' && (error as { configError?: boolean }).configError)) {
    errLine(`Configuration error: ${message}`);
  } else if (name === 'UsageError') {
    errLine(`middle-management dev token: ${message}`);
    return 2;
  } else {
    errLine(`middle-management dev: ${message}`);
  }
  return 1;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** In this repository `npm start` runs the example: say how its tokens are made. */
function tokenHint(env: NodeJS.ProcessEnv): string {
  return env.npm_lifecycle_event === 'start' ? 'npm run token --' : 'npx middle-management dev token';
}

export function registerDev(program: Command): void {
  const dev = program
    .command('dev')
    .description("run this folder's Serverless service locally: its manage function under serverless-offline, an embedded DynamoDB and a development token issuer")
    .option('--stage <stage>', 'the stage to run', 'dev')
    .argument('[offline-args...]', 'passed to `serverless offline start` (e.g. --reloadHandler)')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      `
Run it in your service's folder (where serverless.yml is). It uses the service's own
serverless and serverless-offline, and keeps its state in .middle-management/.

Environment:
  PORT (3000)                  the HTTP API
  LAMBDA_PORT (3002)           the Lambda invoke endpoint (direct invocations, workers)
  DYNAMODB_PORT (8000)         the embedded DynamoDB (dynalite, in memory)
  ISSUER_PORT (3005)           the development token issuer (an OpenID provider)
  AWS_ENDPOINT_URL_DYNAMODB    use this DynamoDB instead (missing tables are created)
  MANAGE_JWT_ISSUER            trust this issuer instead of the development one
  MANAGE_*                     any setting of the manage function (docs/local.md)

Tokens: middle-management dev token [--sub NAME] [--groups a,b]
Web console: http://localhost:PORT/__manage__/console (sign in at the development
issuer: developer, alice, bob or audrey; the password is the user name)
`,
    )
    .action(async (offlineArgs: string[], options: { stage: string }) => {
      try {
        const stack = await loadStack();
        process.exitCode = await stack.runDev({
          dir: process.cwd(),
          env: process.env,
          stage: options.stage,
          offlineArgs,
          tokenHint: tokenHint(process.env),
        });
      } catch (error) {
        process.exitCode = reportFailure(error);
      }
    });

  dev
    .command('token')
    .description('print a token of the development issuer that the local stack accepts (and nothing else)')
    .option('--sub <name>', 'the subject (default: developer)')
    .option('--groups <a,b>', 'the groups claim, comma-separated')
    .option('--username <name>', 'the username claim (default: the subject)')
    .option('--ttl <seconds>', 'lifetime in seconds (default 3600)')
    .action(async (options: { sub?: string; groups?: string; username?: string; ttl?: string }) => {
      try {
        const ttl = options.ttl === undefined ? 3600 : Number(options.ttl);
        if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError(`--ttl must be a whole number of seconds, not "${options.ttl}"`);
        if (options.sub !== undefined && options.sub.trim() === '') throw new UsageError('--sub must not be empty');
        const stack = await loadStack();
        const token = await stack.devToken({
          dir: process.cwd(),
          env: process.env,
          ...(options.sub !== undefined ? { sub: options.sub } : {}),
          ...(options.username !== undefined ? { username: options.username } : {}),
          groups: (options.groups ?? '')
            .split(',')
            .map((group) => group.trim())
            .filter(Boolean),
          ttl,
        });
        writeSecretToStdout(token);
        process.exitCode = 0;
      } catch (error) {
        process.exitCode = reportFailure(error);
      }
    });
}
