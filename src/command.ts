/**
 * How a command is declared: one small typed module under `commands/`.
 *
 * ```ts
 * export default defineCommand({
 *   description: 'Say something back',
 *   args: Type.Object({ message: Type.String() }),
 *   async run({ message }, ctx) { ctx.log(message); return { message }; },
 * });
 * ```
 */
import type { Static, TObject } from '@sinclair/typebox';

/** Who asked for the run, as recorded in the audit. */
export type Actor =
  | {
      kind: 'token';
      issuer: string;
      subject: string;
      username?: string;
      groups: string[];
      scopes: string[];
    }
  | {
      kind: 'invoke';
      /** Given by the invoker, e.g. a state machine's `$$.Execution.Id`. */
      name: string;
    };

export interface CommandContext {
  executionId: string;
  actor: Actor;
  /** Appends one line to the execution's output (returned to the caller and kept in the audit). */
  log: (...parts: unknown[]) => void;
  /** Aborted when the time limit is reached: stop work and return or throw. */
  signal: AbortSignal;
  /** When the time limit ends, in epoch milliseconds. */
  deadline: number;
}

export interface CommandDefinition<Args extends TObject = TObject, Result = unknown> {
  /** One line for `GET /__manage__` and `mm commands`. */
  description: string;
  /** The JSON Schema of `data` (TypeBox). Unknown keys are refused unless the schema allows them explicitly. */
  args: Args;
  /** Top-level argument names replaced by `"[REDACTED]"` in the audit; their values are also scrubbed from output. */
  sensitive?: readonly (keyof Static<Args> & string)[];
  /** The caller needs one of these groups (`cognito:groups` or `groups` claim). */
  groups?: readonly string[];
  /** The caller's token needs every one of these scopes. */
  scopes?: readonly string[];
  /** How long a run may take; default {@link commandDefaults.timeLimitMs}. */
  timeLimitMs?: number;
  /** At most one run at a time. */
  exclusive?: boolean;
  /** Groups whose members must approve a run before it happens (two-person rule). */
  approvers?: readonly string[];
  run(args: Static<Args>, ctx: CommandContext): Promise<Result> | Result;
  /** What `run` would do, without doing it (`dryRun: true`). */
  plan?(args: Static<Args>, ctx: CommandContext): Promise<unknown> | unknown;
}

/** A loaded command, its name attached. */
export interface Command extends CommandDefinition {
  name: string;
}

export const commandDefaults = {
  /** Fits the default HTTP window (28 s), so a command that declares nothing runs synchronously, approvals included. */
  timeLimitMs: 25_000,
} as const;

/**
 * Declare a command. The argument schema is made strict (`additionalProperties: false`)
 * unless it says otherwise, so that a mistyped argument is an error and not a silent default.
 */
export function defineCommand<Args extends TObject, Result>(
  definition: CommandDefinition<Args, Result>,
): CommandDefinition<Args, Result> {
  if (definition.args.additionalProperties === undefined) {
    definition.args.additionalProperties = false;
  }
  if (definition.timeLimitMs !== undefined && !(definition.timeLimitMs > 0)) {
    throw new Error('timeLimitMs must be a positive number of milliseconds');
  }
  return definition;
}

/** A command module's default export, loaded on first use. */
export type CommandLoader = () => Promise<{ default: CommandDefinition<any, any> }>;
