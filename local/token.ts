/**
 * `npm run token -- [--sub NAME] [--groups a,b] [--username U] [--ttl SECONDS]`:
 * `middle-management dev token` in the example service's folder. Prints one
 * bearer token on stdout and nothing else, so that `MM_TOKEN=$(npm run -s token)` works.
 * The stack need not be running.
 */
import { runCliInExample } from './start.js';

await runCliInExample(['dev', 'token', ...process.argv.slice(2)]);
