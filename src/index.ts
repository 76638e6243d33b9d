/**
 * serverless-middle-management: run allow-listed maintenance commands on AWS
 * Lambda over an authenticated, audited HTTPS API and direct invocation.
 *
 * ```ts
 * // handlers/manage.ts
 * import { createManageHandler } from 'serverless-middle-management';
 * import reindex from '../commands/reindex.js';
 *
 * export const handler = createManageHandler({
 *   commands: { reindex, purge: () => import('../commands/purge.js') },
 * });
 * ```
 *
 * @packageDocumentation
 */
import type * as TypeBox from '@sinclair/typebox';
import { toLoaders, type CommandEntry } from './command-entry.js';
import { loadConfig, type Environment, type ManageConfig } from './config.js';
import { createManageHandler as createHandler } from './handler/create.js';
import type { Logger } from './log.js';
import type { AuditStore } from './stores/audit/store.js';
import type { StateStore } from './stores/state/store.js';

/**
 * The TypeBox builders that command argument schemas are written with: `Type.Object`,
 * `Type.String`, `Type.Number`, `Type.Integer`, `Type.Boolean`, `Type.Null`, `Type.Literal`,
 * `Type.Union`, `Type.Array`, `Type.Tuple`, `Type.Optional`, `Type.Enum`, `Type.Unknown`,
 * `Type.Any`. Re-exported so that a service never pins TypeBox itself and `run()`
 * arguments are always typed from the schema. The rest of TypeBox is
 * `serverless-middle-management/typebox`.
 */
export * as Type from './type.js';

/** The TypeScript type a TypeBox schema describes: `Static<typeof schema>`. */
export type Static<T extends TypeBox.TSchema> = TypeBox.Static<T>;
/** A TypeBox schema of any kind. */
export type TSchema = TypeBox.TSchema;
/** A TypeBox object schema: what a command's `args` is. */
export type TObject<T extends TypeBox.TProperties = TypeBox.TProperties> = TypeBox.TObject<T>;

export { defineCommand } from './command.js';
export type { Actor, CommandContext, CommandDefinition, CommandLoader } from './command.js';
export type { Environment, ManageConfig, CognitoIssuerConfig, OidcIssuerConfig } from './config.js';
export type { Logger, LogLevel } from './log.js';
export type { AuditStore, ExecutionRecord, ExecutionStatus } from './stores/audit/store.js';
export type { StateStore, StateItem, CreateResult } from './stores/state/store.js';
export type { ArgumentIssue, ErrorCode } from './errors.js';
export {
  ManageError,
  InvalidRequest,
  InvalidArguments,
  Unauthorized,
  CommandNotAllowed,
  Forbidden,
  NotFound,
  MethodNotAllowed,
  Conflict,
  PayloadTooLarge,
  UnsupportedMediaType,
  CommandFailed,
  InternalError,
  AuditUnavailable,
  CommandTimedOut,
} from './errors.js';
export { ConfigError, loadConfig } from './config.js';

export type { CommandEntry, LazyCommand } from './command-entry.js';

/**
 * The part of the Lambda context the handler reads. Declared here so that a
 * service needs no `@types/aws-lambda`; Lambda's own context object fits it.
 */
export interface LambdaContext {
  readonly awsRequestId?: string;
  readonly functionName?: string;
  getRemainingTimeInMillis?(): number;
}

/**
 * The `manage` Lambda handler: API Gateway HTTP API (payload 2.0) and REST (v1)
 * events, and direct invocations (Step Functions, `aws lambda invoke`).
 * Resolves to an HTTP response for HTTP events, to the execution for direct
 * invocations; a failed direct invocation rejects with an error whose `name`
 * is the error code.
 */
export type ManageHandler = (event: unknown, context?: LambdaContext) => Promise<any>;

/** Options of {@link createManageHandler}. */
export interface CreateManageHandlerOptions {
  /** Command name → command (or lazy loader). Only names also in the allowlist may run. */
  commands: Readonly<Record<string, CommandEntry>>;
  /**
   * The configuration. Default: parsed from {@link CreateManageHandlerOptions.env}
   * with {@link loadConfig}, which throws a {@link ConfigError} naming the variable.
   */
  config?: ManageConfig;
  /** Where the `MANAGE_*` variables are read from when `config` is not given. Default: `process.env`. */
  env?: Environment;
  /** The audit trail. Default: DynamoDB, table `MANAGE_AUDIT_TABLE`. */
  audit?: AuditStore;
  /** Idempotency keys, leases and pending approvals. Default: DynamoDB, table `MANAGE_STATE_TABLE`. */
  state?: StateStore;
  /** Where structured log lines go. Default: one JSON line per event on stdout. */
  logger?: Logger;
}

/**
 * Build the `manage` Lambda handler. Call it once, at module load, so that a
 * misconfiguration fails the cold start with a message naming the variable:
 *
 * ```ts
 * export const handler = createManageHandler({ commands: { noop, echo } });
 * ```
 *
 * @throws ConfigError when a `MANAGE_*` variable is missing or wrong
 */
export function createManageHandler(options: CreateManageHandlerOptions): ManageHandler {
  const commands = toLoaders(options.commands);
  const config = options.config ?? loadConfig(options.env ?? process.env, Object.keys(commands));
  const handler = createHandler(config, {
    commands,
    ...(options.audit ? { audit: options.audit } : {}),
    ...(options.state ? { state: options.state } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return handler as unknown as ManageHandler;
}
