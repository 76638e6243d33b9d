/**
 * DynamoDB's hard limits, and what a refusal of them means. A request that
 * DynamoDB refuses as invalid (`ValidationException`: an item over 400 KB, a key
 * over 2,048/1,024 bytes) will be refused again however often it is retried: it
 * is the request's fault, a 400 `InvalidRequest`, never the retryable 503
 * `AuditUnavailable` of an outage.
 */
import { InvalidRequest } from '../errors.js';

export const dynamoLimits = {
  itemBytes: 400 * 1024,
  partitionKeyBytes: 2048,
  sortKeyBytes: 1024,
} as const;

/** True for DynamoDB's `ValidationException` (as the AWS SDK names it). */
export function isValidationError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'ValidationException';
}

/** A store's error as the pipeline should see it: validation refusals become InvalidRequest; the rest unchanged. */
export function asStoreError(error: unknown): unknown {
  if (!isValidationError(error)) return error;
  return new InvalidRequest('The request is too large to be recorded (a value or an identity exceeds what the audit can store).', { cause: error });
}
