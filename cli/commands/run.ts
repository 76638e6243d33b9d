/** `mm run <command> key=value… [--data-json J | --data-file F] [--dry-run] [--idempotency-key K] [--async | --wait] [--yes]` */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errorFromResponse, ok, type ApiResponse } from '../api.js';
import { CliError, Exit, TERMINAL_STATUSES, exitCodeForStatus, usageError } from '../errors.js';
import { colors, errLine, isInteractive, out, outLine, outRaw } from '../io.js';
import { formatOutcome } from '../format.js';
import { checkData, parseAssignments, type ArgumentIssue, type JsonSchema } from '../schema.js';
import { askConfirm, setInterruptHint, startProgress } from '../ui.js';
import type { Session } from '../session.js';
import { waitForExecution } from './wait.js';
import { parseSeconds } from './parse.js';

export interface RunOptions {
  dataJson?: string;
  dataFile?: string;
  dryRun?: boolean;
  idempotencyKey?: string;
  async?: boolean;
  wait?: boolean;
  waitTimeout?: string;
  yes?: boolean;
}

export interface CommandEntry {
  name: string;
  description?: string;
  schema?: JsonSchema;
  timeLimitMs?: number;
  exclusive?: boolean;
  /** Present when a run needs a second person's approval. */
  approvers?: string[];
  /** Whether the command has a plan for `--dry-run`. */
  dryRun?: boolean;
}

/** The HTTP window of a synchronous run when the server does not say (MANAGE_HTTP_TIME_LIMIT_MS' default). */
export const DEFAULT_HTTP_WINDOW_MS = 28_000;
/**
 * A command is followed asynchronously by default (`--wait`) when its time limit
 * exceeds the HTTP window by more than this: the default limit (30 s) against the
 * default window (28 s) is not a long command, and stays a plain synchronous run.
 */
export const LONG_RUN_MARGIN_MS = 10_000;

export async function run(session: Session, command: string, words: string[], options: RunOptions): Promise<number> {
  if (options.async && options.wait) throw usageError('--async and --wait exclude each other: --async returns at once, --wait follows the run to its end.');
  if (options.dataJson !== undefined && options.dataFile !== undefined) throw usageError('Give --data-json or --data-file, not both.');
  const waitTimeoutMs = options.waitTimeout === undefined ? undefined : parseSeconds(options.waitTimeout, '--wait-timeout') * 1000;
  const idempotencyKey = options.idempotencyKey ?? randomUUID();
  if (!/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    throw usageError('--idempotency-key must be 1–255 visible ASCII characters.');
  }
  const base = readBaseData(options);
  const api = session.api;

  // What this caller may run, with each command's argument schema.
  const listing = ok(await api.request('GET', '/__manage__')).body as { commands?: CommandEntry[]; httpTimeLimitMs?: number };
  const entry = Array.isArray(listing?.commands) ? listing.commands.find((c) => c?.name === command) : undefined;

  const parsed = parseAssignments(words, entry?.schema, base);
  const issues: ArgumentIssue[] = [...parsed.issues];
  if (entry && parsed.issues.length === 0) issues.push(...checkData(parsed.data, entry.schema));
  if (issues.length) {
    throw new CliError(
      Exit.Usage,
      'InvalidArguments',
      issues.length === 1
        ? `Invalid argument for ${command}: ${issues[0]!.message}.`
        : `Invalid arguments for ${command} (see mm commands):`,
      { details: { issues } },
    );
  }
  const data = parsed.data;

  const httpWindow = typeof listing?.httpTimeLimitMs === 'number' ? listing.httpTimeLimitMs : DEFAULT_HTTP_WINDOW_MS;
  const longRunning = typeof entry?.timeLimitMs === 'number' && entry.timeLimitMs > httpWindow + LONG_RUN_MARGIN_MS;
  const wait = !options.async && (options.wait ?? (longRunning && !options.dryRun));
  const preferAsync = options.async === true || wait;

  if (session.profile.confirm && !options.yes) await confirm(session, command, data, entry?.schema, options);

  const progress = await startProgress(`${options.dryRun ? 'Planning' : 'Running'} ${command}`, { quiet: session.json });
  setInterruptHint(`Interrupted. The run may go on; repeat the same command with --idempotency-key ${idempotencyKey} to get its outcome without running it twice.`);
  let response: ApiResponse;
  try {
    response = await api.request('POST', `/__manage__/${encodeURIComponent(command)}`, {
      body: { data, ...(options.dryRun ? { dryRun: true } : {}) },
      headers: {
        'idempotency-key': idempotencyKey,
        ...(preferAsync ? { prefer: 'respond-async' } : {}),
      },
      // Past the server's own window (it answers 504 with the execution id before this).
      timeoutMs: Math.max(httpWindow + 30_000, 60_000),
    });
  } finally {
    progress.stop();
    setInterruptHint(undefined);
  }
  if (response.status < 200 || response.status >= 300) {
    const error = errorFromResponse(response);
    if (error.code === 'CommandFailed') error.message = `${command} failed: ${error.message}`;
    if (error.code === 'CommandTimedOut') error.message = `${command} timed out: ${error.message}`;
    throw error;
  }

  const body = response.body ?? {};
  const status = String(body.status ?? '');
  const executionId = typeof body.executionId === 'string' ? body.executionId : undefined;

  if (TERMINAL_STATUSES.has(status)) {
    // A synchronous answer (or a server that ran it at once despite Prefer: respond-async).
    if (session.json) outRaw(response.raw);
    else out(formatOutcome(body, colors.out));
    return exitCodeForStatus(status);
  }
  if (!executionId) {
    if (session.json) outRaw(response.raw);
    else outLine(response.raw);
    return Exit.Ok;
  }
  const approveUrl = status === 'awaiting_approval' ? consoleLink(body.approveUrl) : undefined;
  if (wait) {
    if (!session.json) errLine(colors.err.dim(`${command} ${status.replace(/_/g, ' ') || 'accepted'}: execution ${executionId}`));
    if (!session.json && approveUrl) errLine(colors.err.yellow(`An approver can open it in the web console: ${approveUrl}`));
    return waitForExecution(session, executionId, waitTimeoutMs === undefined ? {} : { timeoutMs: waitTimeoutMs });
  }
  // Accepted to run later (--async), or waiting for an approver.
  if (session.json) outRaw(response.raw);
  else {
    outLine(executionId);
    if (status === 'awaiting_approval') {
      errLine(colors.err.yellow(`${command} awaits approval by a second person: mm approve ${executionId} (another operator), then mm show ${executionId}`));
      if (approveUrl) errLine(colors.err.yellow(`Send an approver the web console's link: ${approveUrl}`));
    } else {
      errLine(colors.err.dim(`${command} ${status.replace(/_/g, ' ') || 'accepted'}; follow it with: mm show ${executionId}  (or mm run … --wait)`));
    }
  }
  return Exit.Ok;
}

/** The server's deep link into its web console (`approveUrl`, present when the console is set up): an http(s) URL, printable as is. */
function consoleLink(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048 || !/^https?:\/\/[\x21-\x7e]+$/.test(value)) return undefined;
  return value;
}

function readBaseData(options: RunOptions): Record<string, unknown> {
  let text: string | undefined;
  let source = '';
  if (options.dataJson !== undefined) {
    text = options.dataJson;
    source = '--data-json';
  } else if (options.dataFile !== undefined) {
    source = `--data-file ${options.dataFile}`;
    try {
      text = readFileSync(options.dataFile === '-' ? 0 : options.dataFile, 'utf8');
    } catch (error) {
      throw usageError(`Cannot read ${options.dataFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw usageError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`${source} must be a JSON object (the command's arguments), e.g. '{"message":"hi"}'.`);
  }
  return parsed as Record<string, unknown>;
}

const SECRET_NAME = /secret|password|passwd|token|credential|private|api[-_]?key/i;

/** Shows what is about to run and asks; without a terminal, refuses (exit 2). */
async function confirm(session: Session, command: string, data: Record<string, unknown>, schema: JsonSchema | undefined, options: RunOptions): Promise<void> {
  const where = `${session.profileName ? `profile ${session.profileName}, ` : ''}${session.api.baseUrl}`;
  if (!isInteractive()) {
    throw usageError(
      `The ${session.profileName ? `profile "${session.profileName}"` : 'profile'} asks for confirmation before every run and there is no terminal to ask on; add --yes to run ${command} anyway.`,
    );
  }
  const c = colors.err;
  errLine(`${c.bold(options.dryRun ? 'Dry run of' : 'About to run')} ${c.bold(c.cyan(command))} ${c.dim(`(${where})`)}`);
  const keys = Object.keys(data);
  const width = Math.max(0, ...keys.map((k) => k.length));
  if (keys.length === 0) errLine(c.dim('  no arguments'));
  for (const key of keys) {
    const property = schema?.properties?.[key];
    const hidden = SECRET_NAME.test(key) || property?.writeOnly === true || /sensitive|secret/i.test(String(property?.description ?? ''));
    errLine(`  ${key.padEnd(width)} = ${hidden ? c.dim('•••••• (hidden)') : JSON.stringify(data[key])}`);
  }
  if (options.async) errLine(c.dim('  (asynchronously)'));
  const yes = await askConfirm(`Run ${command}?`, false);
  if (!yes) throw new CliError(Exit.Usage, 'Cancelled', 'Cancelled: nothing was sent.');
}
