/** `mm approve <id>` and `mm reject <id>`: the second person of the two-person rule. */
import { errorFromResponse, ok } from '../api.js';
import { CliError, Exit, TERMINAL_STATUSES, exitCodeForStatus, usageError } from '../errors.js';
import { colors, errLine, isInteractive, out, outLine, outRaw } from '../io.js';
import { actorLabel, formatOutcome } from '../format.js';
import { askConfirm, startProgress } from '../ui.js';
import type { Session } from '../session.js';
import { planDigestOf } from '../../src/pipeline/rails.js';
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
  // An approval names the plan it approves: the approver sees the request first (command, redacted
  // arguments, requester, digest), and the server refuses an approval without the digest or with another.
  let planDigest: string | undefined;
  if (decision === 'approve') {
    const record = await readRecord(session, id);
    planDigest = checkedDigest(record);
    showRequest(session, id, record, planDigest);
    if (!options.yes) await confirmApproval(session);
  }

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

/** The execution as the approver sees it; what cannot be read cannot be approved (nothing approved blind). */
async function readRecord(session: Session, id: string): Promise<Record<string, any>> {
  const response = await session.api.request('GET', executionPath(id));
  if (response.status !== 200 || typeof response.body !== 'object' || response.body === null) throw errorFromResponse(response);
  return response.body;
}

/**
 * The record's plan digest, recomputed from what the record shows (its command,
 * its redacted arguments and the keyed hashes of the sensitive ones): what is
 * approved is exactly what was shown.
 */
function checkedDigest(record: Record<string, any>): string {
  if (record.status !== 'awaiting_approval') {
    throw new CliError(Exit.Conflict, 'Conflict', `Execution ${record.executionId ?? ''} is not awaiting approval: it is ${String(record.status ?? 'unknown').replace(/_/g, ' ')}.`);
  }
  const digest = record.planDigest;
  const args = typeof record.args === 'object' && record.args !== null ? record.args : {};
  const argsHmac = typeof record.argsHmac === 'object' && record.argsHmac !== null ? record.argsHmac : {};
  if (typeof digest !== 'string' || planDigestOf(String(record.command), args, argsHmac) !== digest) {
    throw new CliError(Exit.Conflict, 'Conflict', 'The request shown does not match its plan digest: nothing was approved.');
  }
  return digest;
}

function showRequest(session: Session, id: string, record: Record<string, any>, digest: string): void {
  const c = colors.err;
  errLine(`${c.bold('Approval of')} ${c.bold(c.cyan(String(record.command ?? '?')))} ${c.dim(`(execution ${id}, ${session.api.baseUrl})`)}`);
  errLine(`  requested by ${actorLabel(record.actor)}${record.requestedAt ? ` at ${record.requestedAt}` : ''}`);
  errLine(`  arguments    ${JSON.stringify(record.args ?? {})}`);
  if (record.argsHmac && Object.keys(record.argsHmac).length) errLine(`  sensitive    ${Object.keys(record.argsHmac).join(', ')} (redacted; keyed hashes in the record)`);
  errLine(`  plan digest  ${digest}`);
}

async function confirmApproval(session: Session): Promise<void> {
  if (!isInteractive()) {
    throw usageError(`mm approve shows the request and asks before approving; there is no terminal to ask on${session.profileName ? ` (profile "${session.profileName}")` : ''}: add --yes to approve what is shown.`);
  }
  if (!(await askConfirm('Approve and run it?', false))) throw new CliError(Exit.Usage, 'Cancelled', 'Cancelled: nothing was approved.');
}
