/**
 * What the warm-overhead probe needs from the project, bundled with the same
 * options as `manage`: the handler factory, the in-memory stores, the command
 * registry, and the `echo` command to call directly.
 */
export { commandLoaders, commandLoaders as commands } from '../../example/commands/index.js';
export { loadConfig } from '../../src/config.js';
export { createManageHandler } from '../../src/handler/create.js';
export { MemoryAuditStore } from '../../src/stores/audit/memory.js';
export { MemoryStateStore } from '../../src/stores/state/store.js';
export { validateArguments } from '../../src/validation.js';
export { default as echo } from '../../example/commands/echo.js';
