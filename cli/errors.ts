/**
 * Exit codes (CONTRACT §7) and the one error type of the CLI.
 *
 * Every failure ends as a {@link CliError}: its exit code, a stable code for
 * `--json` output, a message for people, and, when the server answered, the
 * response body exactly as received.
 */

export const Exit = {
  Ok: 0,
  CommandFailed: 1,
  Usage: 2,
  NotAuthenticated: 3,
  Forbidden: 4,
  TimedOut: 5,
  Conflict: 6,
  Service: 7,
} as const;

export type ExitCode = (typeof Exit)[keyof typeof Exit];

export const EXIT_CODE_HELP = `Exit codes:
  0  succeeded
  1  command failed (CommandFailed)
  2  usage or invalid arguments (InvalidRequest, InvalidArguments, a local usage error)
  3  not authenticated (401, or no token available)
  4  forbidden or not allowed (Forbidden, CommandNotAllowed, a rejected approval)
  5  timed out (CommandTimedOut, gateway timeout, an expired approval)
  6  conflict (already running, idempotency key in flight or reused)
  7  service or network error (503, other 5xx, unreachable)`;

export interface CliErrorOptions {
  /** The server's response body, exactly as received: what `--json` prints. */
  raw?: string;
  /** The parsed body, when it was JSON. */
  body?: unknown;
  status?: number;
  executionId?: string;
  /** Extra fields for the synthetic `--json` error body of a local error (e.g. `issues`). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class CliError extends Error {
  override readonly name = 'CliError';
  readonly raw?: string;
  readonly body?: unknown;
  readonly status?: number;
  readonly executionId?: string;
  readonly details?: Record<string, unknown>;

  constructor(
    readonly exitCode: ExitCode,
    /** Stable code: the server's `error.code`, or one of the CLI's own (`UsageError`, `NetworkError`, `NotAuthenticated`, …). */
    readonly code: string,
    message: string,
    options: CliErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.raw !== undefined) this.raw = options.raw;
    if (options.body !== undefined) this.body = options.body;
    if (options.status !== undefined) this.status = options.status;
    if (options.executionId !== undefined) this.executionId = options.executionId;
    if (options.details !== undefined) this.details = options.details;
  }

  /** What `--json` prints on stdout for this error: the server's body, or one in the same shape. */
  jsonText(): string {
    if (this.raw !== undefined) return this.raw;
    return JSON.stringify({
      error: {
        code: this.code,
        message: this.message,
        ...(this.executionId ? { executionId: this.executionId } : {}),
        ...this.details,
      },
    });
  }
}

export function usageError(message: string, details?: Record<string, unknown>): CliError {
  return new CliError(Exit.Usage, 'UsageError', message, details ? { details } : {});
}

export function notAuthenticated(message: string, cause?: unknown): CliError {
  return new CliError(Exit.NotAuthenticated, 'NotAuthenticated', message, cause === undefined ? {} : { cause });
}

/** The exit code for an HTTP error response: by the error code first, then by the status. */
export function exitCodeFor(status: number, code: string | undefined): ExitCode {
  switch (code) {
    case 'CommandFailed':
      return Exit.CommandFailed;
    case 'InvalidRequest':
    case 'InvalidArguments':
    case 'PayloadTooLarge':
    case 'UnsupportedMediaType':
      return Exit.Usage;
    case 'Unauthorized':
      return Exit.NotAuthenticated;
    case 'Forbidden':
    case 'CommandNotAllowed':
      return Exit.Forbidden;
    case 'CommandTimedOut':
      return Exit.TimedOut;
    case 'Conflict':
      return Exit.Conflict;
    case 'AuditUnavailable':
    case 'InternalError':
      return Exit.Service;
  }
  if (status === 401) return Exit.NotAuthenticated;
  if (status === 403) return Exit.Forbidden;
  if (status === 409) return Exit.Conflict;
  if (status === 504) return Exit.TimedOut;
  if (status === 408 || status === 429 || status >= 500) return Exit.Service;
  if (status >= 400) return Exit.Usage;
  return Exit.Service;
}

/** The exit code for an execution's final status (`--wait`, `approve --wait`). */
export function exitCodeForStatus(status: string | undefined, errorCode?: unknown): ExitCode {
  switch (status) {
    case 'succeeded':
    case 'planned':
      return Exit.Ok;
    case 'failed':
      // A worker refused before running (exclusive and busy, audit down) is not the command failing.
      if (errorCode === 'Conflict') return Exit.Conflict;
      if (errorCode === 'AuditUnavailable') return Exit.Service;
      return Exit.CommandFailed;
    case 'timed_out':
    case 'expired':
      return Exit.TimedOut;
    case 'rejected':
      return Exit.Forbidden;
    default:
      return Exit.Service;
  }
}

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'timed_out', 'rejected', 'expired', 'planned']);
