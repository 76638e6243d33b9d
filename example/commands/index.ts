/**
 * The service's commands: one module each, listed here by name. Adding a command is
 * one file in this folder and one line here.
 *
 * Imported statically: with the handler bundled into one file, a command module costs
 * only its own code. (Lazy loaders, `greet: () => import('./greet.js')`, also work, but
 * esbuild then wraps every module a lazy command imports, this package included, and
 * keeps all of their exports: about 90 kB more bundle. Keep them for commands with heavy
 * dependencies of their own.)
 */
import type { CommandDefinition, CommandLoader } from 'serverless-middle-management';
import echo from './echo.js';
import fail from './fail.js';
import greet from './greet.js';
import noop from './noop.js';
import sleep from './sleep.js';

export const commands = Object.freeze({ noop, echo, sleep, fail, greet } satisfies Record<string, CommandDefinition<any, any>>);

/** The same commands as loaders, for code that takes loaders (this repository's tests and local stack). */
export const commandLoaders: Readonly<Record<keyof typeof commands, CommandLoader>> = Object.freeze(
  Object.fromEntries(Object.entries(commands).map(([name, command]) => [name, async () => ({ default: command })])) as Record<
    keyof typeof commands,
    CommandLoader
  >,
);
