/**
 * The command registry: name → module, loaded only when a request needs it.
 * Adding a command is one file in this folder and one line here.
 */
import type { CommandLoader } from '../../src/command.js';

export const commandLoaders: Readonly<Record<string, CommandLoader>> = Object.freeze({
  noop: () => import('./noop.js'),
  echo: () => import('./echo.js'),
  sleep: () => import('./sleep.js'),
  fail: () => import('./fail.js'),
});
