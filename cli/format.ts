/** Human-readable rendering: outcomes, execution records, tables, errors. */
import type pc from 'picocolors';
import type { CliError } from './errors.js';

export type Colors = ReturnType<typeof pc.createColors>;

const STATUS_MARK: Record<string, [string, keyof Colors]> = {
  succeeded: ['✔', 'green'],
  planned: ['○', 'cyan'],
  failed: ['✖', 'red'],
  timed_out: ['⏱', 'yellow'],
  rejected: ['✖', 'red'],
  expired: ['⏱', 'yellow'],
  accepted: ['…', 'cyan'],
  running: ['…', 'cyan'],
  awaiting_approval: ['?', 'yellow'],
};

export function statusText(status: string, c: Colors): string {
  const [, color] = STATUS_MARK[status] ?? ['•', 'white'];
  return (c[color] as (s: string) => string)(status);
}

function mark(status: string, c: Colors): string {
  const [symbol, color] = STATUS_MARK[status] ?? ['•', 'white'];
  return (c[color] as (s: string) => string)(symbol);
}

export function formatDuration(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

export function actorLabel(actor: any): string {
  if (!actor || typeof actor !== 'object') return '';
  if (actor.kind === 'invoke') return `invoke:${actor.name ?? '?'}`;
  return String(actor.username ?? actor.subject ?? '?');
}

function indent(text: string, prefix = '    '): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

function renderValue(value: unknown): string {
  if (typeof value === 'string') return value;
  const compact = JSON.stringify(value) ?? 'null';
  return compact.length <= 72 ? compact : (JSON.stringify(value, null, 2) ?? 'null');
}

/** A value shown on its key's line when short, else as an indented block under it. */
function field(name: string, value: unknown, c: Colors, width = 10): string[] {
  const text = renderValue(value);
  if (!text.includes('\n') && text.length <= 72) return [`  ${c.dim(name.padEnd(width))} ${text}`];
  return [`  ${c.dim(name)}`, indent(text)];
}

/** The outcome of a run (the 200/202 body) or an execution record, for people. */
export function formatOutcome(body: any, c: Colors, options: { record?: boolean } = {}): string {
  const status = String(body?.status ?? 'unknown');
  const lines: string[] = [];
  const dry = body?.dryRun === true && status === 'planned' ? ' (dry run)' : '';
  const duration = formatDuration(body?.durationMs);
  lines.push(`${mark(status, c)} ${c.bold(String(body?.command ?? '?'))} ${statusText(status, c)}${dry}${duration ? ` in ${duration}` : ''}`);
  lines.push(...field('execution', String(body?.executionId ?? '?'), c));
  if (options.record) {
    if (body.actor) lines.push(...field('actor', actorLabel(body.actor), c));
    if (body.args && Object.keys(body.args).length) lines.push(...field('arguments', body.args, c));
    if (body.requestedAt && body.requestedAt !== body.startedAt) lines.push(...field('requested', body.requestedAt, c));
    if (body.startedAt) lines.push(...field('started', body.startedAt, c));
    if (body.finishedAt) lines.push(...field('finished', body.finishedAt, c));
    if (body.decision) lines.push(...field(body.decision.decision ?? 'decision', `by ${actorLabel(body.decision.by)} at ${body.decision.at ?? '?'}`, c));
  }
  if ('result' in (body ?? {}) && body.result !== undefined && (status === 'succeeded' || status === 'planned')) {
    lines.push(...field(status === 'planned' ? 'plan' : 'result', body.result, c));
  }
  if (body?.error?.message) lines.push(...field('error', `${body.error.code ? `${body.error.code}: ` : ''}${body.error.message}`, c));
  const output: unknown[] = Array.isArray(body?.output) ? body.output : [];
  if (output.length) {
    lines.push(`  ${c.dim('output')}`);
    for (const line of output) lines.push(`    ${c.dim('│')} ${String(line)}`);
  }
  if (body?.auditRecorded === false || body?.outcomeRecorded === false && TERMINAL.has(status)) {
    lines.push(c.yellow('  ! the outcome could not be written to the audit trail'));
  }
  return `${lines.join('\n')}\n`;
}

const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'rejected', 'expired', 'planned']);

/** A plain table: a header row, columns padded, the last one left ragged. */
export function table(headers: string[], rows: string[][], c: Colors): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const render = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  return `${[c.bold(render(headers)), ...rows.map(render)].join('\n')}\n`;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
function visibleLength(text: string): number {
  return [...text.replace(ANSI, '')].length;
}

/** An error for people, on stderr: the message, the execution to look at, the issues, a hint. */
export function formatError(error: CliError, c: Colors): string {
  const lines = [`${c.red('✖')} ${error.message}`];
  if (error.executionId) {
    lines.push(`  ${c.dim('execution'.padEnd(10))} ${error.executionId}`);
  }
  const issues = (error.body as any)?.error?.issues ?? error.details?.issues;
  if (Array.isArray(issues) && !error.message.includes('\n') && issues.length > 1) {
    for (const issue of issues.slice(0, 20)) lines.push(`  ${c.dim(String(issue.path || '/'))} ${issue.message}`);
  }
  const holder = (error.body as any)?.error?.holderExecutionId;
  if (typeof holder === 'string') lines.push(`  ${c.dim('running'.padEnd(10))} ${holder} (mm show ${holder})`);
  const output = (error.body as any)?.output;
  if (Array.isArray(output) && output.length) {
    lines.push(`  ${c.dim('output')}`);
    for (const line of output) lines.push(`    ${c.dim('│')} ${String(line)}`);
  }
  if (error.executionId) lines.push(c.dim(`  details: mm show ${error.executionId}`));
  return `${lines.join('\n')}\n`;
}
