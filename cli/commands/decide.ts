/** `mm approve <id>` and `mm reject <id>`: the second person of the two-person rule. */
import { errorFromResponse, ok } from '../api.js';
import { CliError, Exit, TERMINAL_STATUSES, exitCodeForStatus, usageError } from '../errors.js';
import { colors, errLine, isInteractive, out, outLine, outRaw } from '../io.js';
import { actorLabel, formatOutcome } from '../format.js';
import { askConfirm, startProgress } from '../ui.js';
import type { Session } from '../session.js';
import { executionPath, waitForExecution } from './wait.js';
import { parseSeconds } from './parse.js';

export interface DecideOptions {
  wait?: boolean;
  waitTimeout?: string;
  yes?: boolean;
}

export async function decide(session: Session, decision: 'approve' | 'reject', executionId: string, options: DecideOptions): Promise<number> {
  const id = executionId.trim();
  if (!id) throw usageError(`mm ${decision} needs an execution id (see mm executions).`);
  const waitTimeoutMs = options.waitTimeout === undefined ? undefined : parseSeconds(options.waitTimeout, '--wait-timeout') * 1000;
  // An approval names the plan it approves (the server refuses it if the arguments changed since).
  const record = decision === 'approve' ? await readRecord(session, id) : undefined;
  if (decision === 'approve' && session.profile.confirm && !options.yes) await confirmApproval(session, id, record);
  const planDigest = typeof record?.planDigest === 'string' ? record.planDigest : undefined;

  // Approving runs the command (within the HTTP window): that can take a while.
  const progress = await startProgress(decision === 'approve' ? `Approving ${id}` : `Rejecting ${id}`, { quiet: session.json });
  let response;
  try {
    response = ok(await session.api.request('POST', `${executionPath(id)}/${decision}`, { body: planDigest ? { planDigest } : {} }));
  } finally {
    progress.stop();
  }
  const body = response.body ?? {};
  const status = String(body.status ?? '');
  // An approval the server handed to a worker (a long command) is followed to its outcome unless told not to.
  const follow = options.wait === true ? !TERMINAL_STATUSES.has(status) : options.wait !== false && status === 'accepted';
  if (decision === 'approve' && follow) {
    if (!session.json) errLine(colors.err.dim(`Approved; execution ${id} is ${status.replace(/_/g, ' ') || 'accepted'}.`));
    return waitForExecution(session, id, waitTimeoutMs === undefined ? {} : { timeoutMs: waitTimeoutMs });
  }
  if (session.json) {
    outRaw(response.raw);
  } else if (decision === 'approve' && TERMINAL_STATUSES.has(status) && status !== 'rejected') {
    // The server ran it at once: this is its outcome.
    out(formatOutcome(body, colors.out));
  } else {
    const done = decision === 'approve' ? 'Approved' : 'Rejected';
    outLine(`${colors.out.green('✔')} ${done} execution ${id}${body.command ? ` (${body.command})` : ''}${status ? `: ${status.replace(/_/g, ' ')}` : ''}.`);
    if (decision === 'approve' && !TERMINAL_STATUSES.has(status)) errLine(colors.err.dim(`Follow it with: mm show ${id}`));
  }
  // Approving starts the run: its own failure is this command's outcome. Rejecting succeeded if we got here.
  if (decision === 'approve' && TERMINAL_STATUSES.has(status) && status !== 'rejected') return exitCodeForStatus(status);
  return Exit.Ok;
}

/** The execution as the approver sees it; undefined if it cannot be read (the decision is then the server's to refuse). */
async function readRecord(session: Session, id: string): Promise<Record<string, any> | undefined> {
  const response = await session.api.request('GET', executionPath(id));
  if (response.status === 401) throw errorFromResponse(response);
  return response.status === 200 && typeof response.body === 'object' && response.body !== null ? response.body : undefined;
}

async function confirmApproval(session: Session, id: string, record: Record<string, any> | undefined): Promise<void> {
  if (!isInteractive()) {
    throw usageError(`The profile "${session.profileName ?? ''}" asks for confirmation and there is no terminal to ask on; add --yes to approve anyway.`);
  }
  const c = colors.err;
  if (record) {
    errLine(`${c.bold('About to approve')} ${c.bold(c.cyan(String(record.command ?? '?')))} requested by ${actorLabel(record.actor)} ${c.dim(`(${session.api.baseUrl})`)}`);
    errLine(`  arguments ${JSON.stringify(record.args ?? {})}`);
  } else {
    errLine(`${c.bold('About to approve')} execution ${id} ${c.dim('(its record could not be read)')}`);
  }
  if (!(await askConfirm('Approve and run it?', false))) throw new CliError(Exit.Usage, 'Cancelled', 'Cancelled: nothing was approved.');
}
