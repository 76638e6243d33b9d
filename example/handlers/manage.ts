import { commandLoaders } from '../commands/index.js';
import { loadConfig } from '../../src/config.js';
import { createManageHandler } from '../../src/handler/create.js';

/** The `manage` function: HTTP and direct invocation. Config errors fail the cold start, naming the variable. */
export const handler = createManageHandler(loadConfig(process.env, Object.keys(commandLoaders)), {
  commands: commandLoaders,
});
