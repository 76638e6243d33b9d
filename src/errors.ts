/**
 * The one error hierarchy of middle-management.
 *
 * Each error carries the HTTP status it maps to, and its `name` is the stable
 * code of CONTRACT §2/§3: the HTTP body's `error.code` and the `errorType` a Step
 * Functions `Retry`/`Catch` matches. Names are string literals, not
 * `constructor.name`, so that minified bundles keep them.
 */

/** One field of `data` that failed the command's argument schema. */
export interface ArgumentIssue {
  /** JSON pointer into `data`, e.g. `/repeat`; `""` for `data` itself. */
  path: string;
  message: string;
}

export abstract class ManageError extends Error {
  abstract override readonly name: ErrorCode;
  abstract readonly status: number;
  /** Set once an execution exists, so the caller can look it up in the audit. */
  executionId?: string;
  /** False when the command ran but its outcome could not be written to the audit. */
  auditRecorded?: boolean;

  constructor(message: string, options?: { cause?: unknown; executionId?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.executionId) this.executionId = options.executionId;
  }

  /** Extra top-level fields of the response's `error` object. */
  details(): Record<string, unknown> {
    return {};
  }

  /** Response headers this error requires (e.g. `Allow`). */
  headers(): Record<string, string> {
    return {};
  }
}

export class InvalidRequest extends ManageError {
  readonly name = 'InvalidRequest';
  readonly status = 400;
}

export class InvalidArguments extends ManageError {
  readonly name = 'InvalidArguments';
  readonly status = 400;
  constructor(readonly issues: ArgumentIssue[]) {
    super(`Invalid arguments: ${issues.map((i) => `${i.path || '/'} ${i.message}`).join('; ')}`);
  }
  override details() {
    return { issues: this.issues };
  }
}

/** One message for every authentication failure: the reason is never revealed. */
export const UNAUTHORIZED_MESSAGE = 'A valid bearer token is required.';

export class Unauthorized extends ManageError {
  readonly name = 'Unauthorized';
  readonly status = 401;
  constructor(options?: { cause?: unknown }) {
    super(UNAUTHORIZED_MESSAGE, options);
  }
  override headers() {
    return { 'www-authenticate': 'Bearer' };
  }
}

export class CommandNotAllowed extends ManageError {
  readonly name = 'CommandNotAllowed';
  readonly status = 403;
  constructor(command: string) {
    // Same words for "not allow-listed" and "does not exist": existence is not revealed.
    super(`Command "${truncate(command, 64)}" is not allowed.`);
  }
}

export class Forbidden extends ManageError {
  readonly name = 'Forbidden';
  readonly status = 403;
}

export class NotFound extends ManageError {
  readonly name = 'NotFound';
  readonly status = 404;
}

export class MethodNotAllowed extends ManageError {
  readonly name = 'MethodNotAllowed';
  readonly status = 405;
  constructor(readonly allow: string[]) {
    super(`Method not allowed; use ${allow.join(' or ')}.`);
  }
  override headers() {
    return { allow: this.allow.join(', ') };
  }
}

export class Conflict extends ManageError {
  readonly name = 'Conflict';
  readonly status = 409;
  constructor(message: string, readonly holderExecutionId?: string) {
    super(message);
  }
  override details() {
    return this.holderExecutionId ? { holderExecutionId: this.holderExecutionId } : {};
  }
}

export class PayloadTooLarge extends ManageError {
  readonly name = 'PayloadTooLarge';
  readonly status = 413;
}

export class UnsupportedMediaType extends ManageError {
  readonly name = 'UnsupportedMediaType';
  readonly status = 415;
}

export class CommandFailed extends ManageError {
  readonly name = 'CommandFailed';
  readonly status = 500;
}

/** A failure of ours, not of the caller or the command: its details stay in the logs. */
export class InternalError extends ManageError {
  readonly name = 'InternalError';
  readonly status = 500;
  constructor(options?: { cause?: unknown }) {
    super('Internal error.', options);
  }
}

export class AuditUnavailable extends ManageError {
  readonly name = 'AuditUnavailable';
  readonly status = 503;
  constructor(options?: { cause?: unknown; message?: string }) {
    super(options?.message ?? 'The audit store cannot be written; the command was not run.', options);
  }
}

export class CommandTimedOut extends ManageError {
  readonly name = 'CommandTimedOut';
  readonly status = 504;
}

export type ErrorCode =
  | 'InvalidRequest'
  | 'InvalidArguments'
  | 'Unauthorized'
  | 'CommandNotAllowed'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'Conflict'
  | 'PayloadTooLarge'
  | 'UnsupportedMediaType'
  | 'CommandFailed'
  | 'InternalError'
  | 'AuditUnavailable'
  | 'CommandTimedOut';

/** Anything thrown becomes a ManageError; unknown errors become a 500 that reveals nothing. */
export function toManageError(error: unknown): ManageError {
  return error instanceof ManageError ? error : new InternalError({ cause: error });
}

/** The JSON body of an error response (CONTRACT §2). */
export function errorBody(error: ManageError): { error: Record<string, unknown> } {
  return {
    error: {
      code: error.name,
      message: error.message,
      ...(error.executionId ? { executionId: error.executionId } : {}),
      ...(error.auditRecorded === false ? { auditRecorded: false } : {}),
      ...error.details(),
    },
  };
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** Rebuilds an error remembered under an idempotency key, so a retry gets the first outcome. */
export function errorFromCode(code: string, message: string, executionId?: string): ManageError {
  const options = executionId ? { executionId } : undefined;
  switch (code) {
    case 'CommandFailed':
      return new CommandFailed(message, options);
    case 'CommandTimedOut':
      return new CommandTimedOut(message, options);
    case 'InvalidRequest':
      return new InvalidRequest(message, options);
    case 'Forbidden':
      return new Forbidden(message, options);
    case 'Conflict':
      return Object.assign(new Conflict(message), options);
    case 'AuditUnavailable':
      return Object.assign(new AuditUnavailable({ message }), options);
    default:
      return Object.assign(new InternalError(), options);
  }
}
