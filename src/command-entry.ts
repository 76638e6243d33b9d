/**
 * What `createManageHandler({ commands })` accepts for one command, made into
 * the loader the pipeline calls on first use.
 */
import type { CommandDefinition, CommandLoader } from './command.js';

/**
 * A command as `commands` takes it: what `defineCommand` returns, or a
 * function that imports a module whose default export it is (`() => import('./x.js')`),
 * loaded on the first request that needs it.
 */
export type CommandEntry = CommandDefinition<any, any> | LazyCommand;

/**
 * `() => import('./x.js')`. From a module compiled to CommonJS, `import()` yields
 * `{ default: module.exports }`, so the command may sit one `default` deeper: both work.
 */
export type LazyCommand = () => Promise<{ default: CommandDefinition<any, any> } | { default: { default: CommandDefinition<any, any> } }>;

/** A command given directly becomes a loader that returns it; a loader stays as it is. */
export function toLoader(name: string, entry: CommandEntry): CommandLoader {
  if (typeof entry === 'function') {
    // `import()` of a module compiled to CommonJS gives `{ default: module.exports }`,
    // whose own `default` is the command: accept both shapes.
    return async () => {
      const loaded: { default: unknown } = await entry();
      const command = loaded?.default as { run?: unknown; default?: { run?: unknown } } | undefined;
      if (command && typeof command.run !== 'function' && typeof command.default?.run === 'function') {
        return { default: command.default as CommandDefinition<any, any> };
      }
      return loaded as { default: CommandDefinition<any, any> };
    };
  }
  if (typeof entry !== 'object' || entry === null || typeof entry.run !== 'function') {
    throw new TypeError(`commands.${name} must be a defineCommand(...) result or a function returning import('./module.js')`);
  }
  const loaded = Promise.resolve({ default: entry });
  return () => loaded;
}

/** Every entry of a `commands` map as a loader. */
export function toLoaders(commands: Readonly<Record<string, CommandEntry>>): Record<string, CommandLoader> {
  const loaders: Record<string, CommandLoader> = {};
  for (const [name, entry] of Object.entries(commands)) loaders[name] = toLoader(name, entry);
  return loaders;
}
