/** Following an execution until it ends: `mm run --wait`, `mm approve --wait`. */
import { setTimeout as sleep } from 'node:timers/promises';
import { errorFromResponse, type ApiResponse } from '../api.js';
import { CliError, Exit, TERMINAL_STATUSES, exitCodeForStatus } from '../errors.js';
import { colors, out, outRaw } from '../io.js';
import { formatOutcome } from '../format.js';
import { setInterruptHint, startProgress } from '../ui.js';
import type { Session } from '../session.js';

export interface WaitOptions {
  /** Give up (exit 5) after this long; the execution goes on. */
  timeoutMs?: number;
  /** First poll interval; grows to {@link MAX_INTERVAL_MS}. */
  intervalMs?: number;
}

const MAX_INTERVAL_MS = 5000;
/** Right after a 202 the record may not be readable yet: 404s are tolerated this long. */
const NOT_YET_VISIBLE_MS = 10_000;

export function executionPath(id: string): string {
  return `/__manage__/executions/${encodeURIComponent(id)}`;
}

/** Polls `GET /__manage__/executions/{id}` until a terminal status, then prints it; returns the exit code. */
export async function waitForExecution(session: Session, executionId: string, options: WaitOptions = {}): Promise<number> {
  const started = Date.now();
  const pollFloor = Number(session.env.MM_POLL_INTERVAL_MS) > 0 ? Number(session.env.MM_POLL_INTERVAL_MS) : 250;
  let interval = options.intervalMs ?? pollFloor;
  const progress = await startProgress(`Waiting for ${executionId}`, { quiet: session.json });
  setInterruptHint(`Stopped waiting; the execution goes on. Follow it with: mm show ${executionId}`);
  let last: ApiResponse | undefined;
  try {
    for (;;) {
      const response = await session.api.request('GET', executionPath(executionId));
      if (response.status === 404 && Date.now() - started < NOT_YET_VISIBLE_MS) {
        // not readable yet
      } else if (response.status < 200 || response.status >= 300) {
        throw errorFromResponse(response);
      } else {
        last = response;
        const status = String(response.body?.status ?? '');
        if (TERMINAL_STATUSES.has(status)) break;
        progress.update(`${response.body?.command ?? 'execution'} ${status.replace(/_/g, ' ')}`);
      }
      if (options.timeoutMs !== undefined && Date.now() - started >= options.timeoutMs) {
        throw new CliError(
          Exit.TimedOut,
          'WaitTimedOut',
          `Still ${String(last?.body?.status ?? 'pending').replace(/_/g, ' ')} after ${Math.round((Date.now() - started) / 1000)} s; the execution goes on. Follow it with: mm show ${executionId}`,
          { executionId, ...(session.json && last ? { raw: last.raw } : {}) },
        );
      }
      await sleep(interval);
      interval = Math.min(Math.round(interval * 1.6), Math.max(MAX_INTERVAL_MS, pollFloor));
    }
  } finally {
    progress.stop();
    setInterruptHint(undefined);
  }
  return printFinal(session, last!);
}

function printFinal(session: Session, response: ApiResponse): number {
  const status = String(response.body?.status ?? '');
  if (session.json) outRaw(response.raw);
  else out(formatOutcome(response.body, colors.out));
  return exitCodeForStatus(status, response.body?.error?.code);
}
