import { createManageHandler } from 'serverless-middle-management';
import { commands } from '../commands/index.js';

/** The `manage` function: HTTP and direct invocation. Config errors fail the cold start, naming the variable. */
export const handler = createManageHandler({ commands });
