/**
 * The shapes the pipeline's rooms share: what a transport asks for, what it
 * gets back, and what the rooms are built from. No behaviour here.
 */
import type { Actor, Command, CommandLoader } from '../command.js';
import type { ManageConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { AuditStore, ExecutionSource, ExecutionStatus } from '../stores/audit/store.js';
import type { StateStore } from '../stores/state/store.js';
import type { TaskReporter, WorkerLauncher } from '../handler/worker.js';

export interface ExecutionRequest {
  command: string;
  data: Record<string, unknown>;
  dryRun: boolean;
  actor: Actor;
  source: ExecutionSource;
  /** The transport's own bound on the run (HTTP window, Lambda time left); the command's limit may be lower. */
  maxTimeMs: number;
  /** A retry with the same key, actor and command returns the first outcome instead of running again. */
  idempotencyKey?: string;
  /** Answer at once (202 `accepted`) and run in a worker invocation. */
  respondAsync?: boolean;
  /** A Step Functions callback token: answer at once, run in a worker, report the outcome to the token. */
  taskToken?: string;
}

/** The 200 body of CONTRACT §2, and what a direct invocation returns. */
export interface ExecutionResponse {
  executionId: string;
  command: string;
  status: ExecutionStatus;
  result: unknown;
  output: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dryRun?: true;
  auditRecorded?: false;
}

/** The 202 body: the execution exists and waits (for an approver, or for its worker). */
export interface PendingResponse {
  executionId: string;
  command: string;
  status: 'awaiting_approval' | 'accepted';
  requestedAt: string;
  /** Until when an approval may come. */
  expiresAt?: string;
  /** What the approver approves: this command with exactly these arguments. */
  planDigest?: string;
  approvers?: string[];
}

export type ExecuteResult = ExecutionResponse | PendingResponse;

/** The answer to an approval decision that rejected the request. */
export interface RejectedResponse {
  executionId: string;
  command: string;
  status: 'rejected';
  decidedBy: string;
  decidedAt: string;
}

export interface CommandSummary {
  name: string;
  description: string;
  schema: unknown;
  timeLimitMs: number;
  exclusive: boolean;
  dryRun: boolean;
  approvers?: string[];
  /** Arguments the console shows as password inputs (the command's `sensitive`). */
  sensitive?: string[];
}

export interface PipelineDependencies {
  config: ManageConfig;
  audit: AuditStore;
  state: StateStore;
  commands: Readonly<Record<string, CommandLoader>>;
  logger: Logger;
  /** Starts worker invocations for accepted executions; without one, async requests are refused. */
  launcher?: WorkerLauncher;
  /** Reports outcomes to Step Functions task tokens. */
  reporter?: TaskReporter;
  now?: () => number;
}

/** One run of a command, as the pipeline records it. */
export interface RunSpec {
  command: Command;
  args: Record<string, unknown>;
  executionId: string;
  /** Who asked for it (for an approved run: the requester, not the approver). */
  actor: Actor;
  dryRun: boolean;
  timeLimitMs: number;
  started: number;
  /** When the caller stops waiting (the HTTP window): the outcome write is not retried past it. */
  answerBy?: number;
  /** The lease held around the run (recorded-run.ts): told when the command really stops. */
  lease?: { stopped?: Promise<void>; timedOut?: boolean };
}

export const workerDefaults = {
  /** How long an accepted execution may wait for its worker to start before it reads as timed out. */
  workerStartGraceMs: 60_000,
  /** The longest a worker can run: Lambda's 15 minutes, less time to record the outcome. */
  workerMaxTimeMs: 900_000 - 3000,
} as const;
