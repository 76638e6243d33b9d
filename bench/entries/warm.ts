/**
 * What the warm-overhead probe needs from the project, bundled with the same
 * options as `manage`: the handler factory, the in-memory stores, the command
 * registry, and the `echo` command to call directly.
 */
export { commandLoaders, commandLoaders as commands } from '../../commands/index.js';
export { loadConfig } from '../../core/config.js';
export { createManageHandler } from '../../core/handler.js';
export { MemoryAuditStore } from '../../core/audit/memory.js';
export { MemoryStateStore } from '../../core/state/store.js';
export { validateArguments } from '../../core/validation.js';
export { default as echo } from '../../commands/echo.js';
