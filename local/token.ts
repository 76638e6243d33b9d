/**
 * `npm run token -- [--sub NAME] [--groups a,b] [--username U] [--ttl SECONDS]`
 *
 * Prints one bearer token of the local development issuer on stdout and nothing
 * else, so that `MM_TOKEN=$(npm run token)` works. The stack need not be running.
 */
import { parseArgs } from 'node:util';
import { loadDevIssuer, signDevToken } from './dev-issuer.js';

const usage = 'usage: npm run token -- [--sub NAME] [--groups a,b] [--username U] [--ttl SECONDS]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      groups: { type: 'string' },
      username: { type: 'string' },
      ttl: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stderr.write(`${usage}\n`);
    return;
  }

  const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError(`--ttl must be a whole number of seconds, not "${values.ttl}"`);
  if (values.sub !== undefined && values.sub.trim() === '') throw new UsageError('--sub must not be empty');

  const token = await signDevToken({
    state: await loadDevIssuer(),
    ...(values.sub !== undefined ? { sub: values.sub } : {}),
    ...(values.username !== undefined ? { username: values.username } : {}),
    groups: (values.groups ?? '')
      .split(',')
      .map((group) => group.trim())
      .filter(Boolean),
    expiresIn: ttl,
  });
  process.stdout.write(`${token}\n`);
}

class UsageError extends Error {}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  // parseArgs reports unknown flags with code ERR_PARSE_ARGS_*.
  const isUsage = error instanceof UsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`token: ${message}\n${isUsage ? `${usage}\n` : ''}`);
  process.exitCode = isUsage ? 2 : 1;
});
