/** `mm audit verify [--command C] [--since T]`: checks the audit trail's hash chains on the server. */
import { ok } from '../api.js';
import { Exit } from '../errors.js';
import { colors, outLine, outRaw } from '../io.js';
import type { Session } from '../session.js';
import { parseSince } from './parse.js';

export interface VerifyOptions {
  command?: string;
  since?: string;
}

export async function verifyAudit(session: Session, options: VerifyOptions): Promise<number> {
  const since = options.since === undefined ? undefined : parseSince(options.since);
  const response = ok(await session.api.request('GET', '/__manage__/audit/verify', { query: { command: options.command, since } }));
  const report = response.body ?? {};
  const problems: unknown[] = firstArray(report, ['problems', 'issues', 'errors', 'breaks']);
  const healthy = typeof report.ok === 'boolean' ? report.ok && problems.length === 0 : problems.length === 0;
  if (session.json) {
    outRaw(response.raw);
    return healthy ? Exit.Ok : Exit.CommandFailed;
  }
  const c = colors.out;
  const scope = `${options.command ? `command ${options.command}` : 'all commands'}${since ? ` since ${since}` : ''}`;
  const counts = describeCounts(report);
  if (healthy) {
    outLine(`${c.green('✔')} Audit trail verified (${scope})${counts ? `: ${counts}` : ''}.`);
    return Exit.Ok;
  }
  outLine(`${c.red('✖')} Audit trail has ${problems.length || 'some'} problem${problems.length === 1 ? '' : 's'} (${scope})${counts ? `; ${counts}` : ''}:`);
  for (const problem of problems.slice(0, 200)) outLine(`  - ${describeProblem(problem)}`);
  if (problems.length > 200) outLine(`  … and ${problems.length - 200} more (use --json for all)`);
  return Exit.CommandFailed;
}

function firstArray(report: Record<string, unknown>, keys: string[]): unknown[] {
  for (const key of keys) if (Array.isArray(report[key])) return report[key] as unknown[];
  return [];
}

function describeCounts(report: Record<string, any>): string {
  const parts: string[] = [];
  if (Array.isArray(report.chains)) {
    const records = report.chains.reduce((sum: number, chain: any) => sum + (typeof chain?.records === 'number' ? chain.records : 0), 0);
    parts.push(`${records} record${records === 1 ? '' : 's'} in ${report.chains.length} chain${report.chains.length === 1 ? '' : 's'}`);
  } else {
    for (const [key, label] of [
      ['checked', 'records checked'],
      ['records', 'records'],
    ] as const) {
      if (typeof report[key] === 'number') parts.push(`${report[key]} ${label}`);
    }
    if (Array.isArray(report.commands)) parts.push(`${report.commands.length} command chain${report.commands.length === 1 ? '' : 's'}`);
  }
  if (report.keyed === true) parts.push('HMAC-keyed');
  else if (report.keyed === false) parts.push('hashes not keyed');
  return parts.join(', ');
}

function describeProblem(problem: unknown): string {
  if (typeof problem === 'string') return problem;
  if (typeof problem !== 'object' || problem === null) return JSON.stringify(problem);
  const p = problem as Record<string, unknown>;
  const where = [p.chain ?? p.command, p.seq !== undefined ? `seq ${p.seq}` : undefined, p.executionId].filter((x) => x !== undefined && x !== '').join(' ');
  const what = [p.problem ?? p.kind ?? p.code, p.detail ?? p.message ?? p.reason].filter((x) => x !== undefined && x !== '').map(String).join(': ');
  return what ? `${where ? `${where}: ` : ''}${what}` : JSON.stringify(problem);
}
