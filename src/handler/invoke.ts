/**
 * Direct invocation (CONTRACT §3): Step Functions tasks and `aws lambda invoke`.
 * IAM is the authentication; the event names the actor to record.
 */
import type { Context } from 'aws-lambda';
import { InvalidRequest } from '../errors.js';
import { jsonBytesOver } from '../validation.js';
import { isPlainObject } from './http.js';
import type { ExecuteResult, Pipeline } from '../pipeline/index.js';
import type { WorkerEvent } from './worker.js';

export interface InvokeEvent {
  command: string;
  data?: Record<string, unknown>;
  dryRun?: boolean;
  idempotencyKey?: string;
  actor?: string;
  /** From `arn:aws:states:::lambda:invoke.waitForTaskToken`: answer at once, report the outcome to it. */
  taskToken?: string;
}

export const invokeDefaults = {
  /** Recorded when the invoker names no actor. */
  actor: 'lambda:invoke',
  /** Time kept back from the Lambda's remaining time to write the outcome and return. */
  responseMarginMs: 1500,
  maxActorLength: 256,
} as const;

const EVENT_KEYS = new Set(['command', 'data', 'dryRun', 'idempotencyKey', 'actor', 'taskToken']);

export class InvokeAdapter {
  constructor(private readonly deps: { pipeline: Pick<Pipeline, 'running' | 'deferring'>; maxEventBytes?: number }) {}

  async handle(event: unknown, context: Context): Promise<ExecuteResult> {
    const request = parseInvokeEvent(event, this.deps.maxEventBytes);
    const remaining = context?.getRemainingTimeInMillis?.() ?? 900_000;
    return this.deps.pipeline.running.execute({
      command: request.command,
      data: request.data ?? {},
      dryRun: request.dryRun ?? false,
      actor: { kind: 'invoke', name: request.actor ?? invokeDefaults.actor },
      source: { channel: 'invoke', ...(context?.awsRequestId ? { requestId: context.awsRequestId } : {}) },
      maxTimeMs: remaining - invokeDefaults.responseMarginMs,
      ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
      ...(request.taskToken !== undefined ? { taskToken: request.taskToken } : {}),
    });
  }

  /** A worker invocation: runs an accepted execution with the time this invocation has. */
  async work(event: WorkerEvent, context: Context): Promise<{ executionId: string }> {
    const remaining = context?.getRemainingTimeInMillis?.() ?? 900_000;
    await this.deps.pipeline.deferring.runAccepted(event.mmWorker.executionId, remaining - invokeDefaults.responseMarginMs);
    return { executionId: event.mmWorker.executionId };
  }
}

export function parseInvokeEvent(event: unknown, maxBytes?: number): InvokeEvent {
  if (!isPlainObject(event)) throw new InvalidRequest('The event must be a JSON object with a "command".');
  // Capped like an HTTP body (MANAGE_MAX_BODY_BYTES): what cannot be recorded is refused before anything is.
  if (maxBytes !== undefined && jsonBytesOver(event, maxBytes)) {
    throw new InvalidRequest(`The event is larger than ${maxBytes} bytes.`);
  }
  const unknownKeys = Object.keys(event).filter((key) => !EVENT_KEYS.has(key));
  if (unknownKeys.length > 0) {
    throw new InvalidRequest(`Unknown event key(s): ${unknownKeys.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 64))).join(', ')}.`);
  }
  const { command, data, dryRun, idempotencyKey, actor, taskToken } = event;
  if (taskToken !== undefined && (typeof taskToken !== 'string' || taskToken === '' || taskToken.length > 2048)) {
    throw new InvalidRequest('"taskToken" must be a string of 1 to 2048 characters.');
  }
  if (typeof command !== 'string' || command === '') throw new InvalidRequest('"command" must be a non-empty string.');
  if (data !== undefined && !isPlainObject(data)) throw new InvalidRequest('"data" must be a JSON object.');
  if (dryRun !== undefined && typeof dryRun !== 'boolean') throw new InvalidRequest('"dryRun" must be true or false.');
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey === '' || idempotencyKey.length > 256)) {
    throw new InvalidRequest('"idempotencyKey" must be a string of 1 to 256 characters.');
  }
  if (actor !== undefined && (typeof actor !== 'string' || actor === '' || actor.length > invokeDefaults.maxActorLength)) {
    throw new InvalidRequest(`"actor" must be a string of 1 to ${invokeDefaults.maxActorLength} characters.`);
  }
  return event as unknown as InvokeEvent;
}
