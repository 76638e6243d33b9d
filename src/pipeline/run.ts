/**
 * Running one command under its time limit: the context it gets, the output it
 * logs, and what it ended with — a value, an error message or the time limit.
 */
import type { Actor, Command, CommandContext } from '../command.js';
import type { ExecutionStatus } from '../stores/audit/store.js';
import { auditLimits, scrubValue, secretScrubber } from '../redact.js';

export interface RunResult {
  status: ExecutionStatus;
  result?: unknown;
  error?: string;
  output: string[];
  /**
   * Settles when the command's own work has really stopped. For a run stopped by
   * its time limit that can be later than the result: a command that ignores its
   * abort signal goes on. An exclusive command's lease must be held until then.
   */
  stopped: Promise<void>;
}

/** Never throws: a command's failure is a result like any other. */
export async function runWithTimeLimit(
  command: Command,
  args: Record<string, unknown>,
  run: { executionId: string; actor: Actor; dryRun: boolean; timeLimitMs: number; now: () => number },
): Promise<RunResult> {
  const output: string[] = [];
  // Objects are scrubbed before they become text: once stringified, a secret with a quote or a backslash is escaped.
  const scrub = secretScrubber(args, command.sensitive ?? []);
  let open = true;
  const controller = new AbortController();
  const ctx: CommandContext = {
    executionId: run.executionId,
    actor: run.actor,
    signal: controller.signal,
    deadline: run.now() + run.timeLimitMs,
    log: (...parts) => {
      // Lines logged after the run ended (a command that ignores its abort signal) are dropped.
      if (open && output.length < auditLimits.outputLines) output.push(scrub(parts.map((part) => formatPart(part, scrub)).join(' ')));
    },
  };
  let timer: NodeJS.Timeout | undefined;
  let stopped: Promise<void> = Promise.resolve();
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), run.timeLimitMs);
  });
  try {
    const work = Promise.resolve().then(() => (run.dryRun ? command.plan!(args as never, ctx) : command.run(args as never, ctx)));
    stopped = work.then(
      () => undefined,
      () => undefined,
    );
    const winner = await Promise.race([work.then((value) => ({ value })), timedOut]);
    if (winner === 'timeout') {
      controller.abort();
      // The command may keep going until it notices the signal; its late rejection is not ours to report.
      work.catch(() => undefined);
      return { status: 'timed_out', error: `Command "${command.name}" exceeded its time limit of ${run.timeLimitMs} ms.`, output, stopped };
    }
    return { status: run.dryRun ? 'planned' : 'succeeded', result: toJsonValue(winner.value), output, stopped };
  } catch (error) {
    return { status: 'failed', error: messageOf(error), output, stopped };
  } finally {
    open = false;
    clearTimeout(timer);
  }
}

/** A thrown value's message; whatever a command throws (even an object with no prototype) says something. */
function messageOf(error: unknown): string {
  if (error instanceof Error) return String(error.message);
  try {
    return String(error);
  } catch {
    return 'The command threw a value that is not an Error.';
  }
}

function formatPart(part: unknown, scrub: (text: string) => string): string {
  if (typeof part === 'string') return scrub(part);
  if (part === undefined || typeof part === 'function' || typeof part === 'symbol') return scrub(String(part));
  try {
    return JSON.stringify(scrubValue(toJsonValue(part), scrub)) ?? String(part);
  } catch {
    return scrub(String(part));
  }
}

/** What a command returned, as JSON will carry it (undefined → null, no functions or cycles). */
function toJsonValue(value: unknown): unknown {
  if (value === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(value) ?? 'null');
  } catch {
    throw new Error('The command returned a value that is not JSON (a cycle or a BigInt).');
  }
}
