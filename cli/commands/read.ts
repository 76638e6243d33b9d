/** The read commands: `mm commands`, `mm executions`, `mm show <id>`. */
import { ok } from '../api.js';
import { Exit, usageError } from '../errors.js';
import { colors, errLine, out, outLine, outRaw } from '../io.js';
import { actorLabel, formatDuration, formatOutcome, statusText, table } from '../format.js';
import { typeLabel, type JsonSchema } from '../schema.js';
import type { Session } from '../session.js';
import type { CommandEntry } from './run.js';
import { executionPath } from './wait.js';
import { parseInteger } from './parse.js';

export async function listCommands(session: Session): Promise<number> {
  const response = ok(await session.api.request('GET', '/__manage__'));
  if (session.json) {
    outRaw(response.raw);
    return Exit.Ok;
  }
  const commands: CommandEntry[] = Array.isArray(response.body?.commands) ? response.body.commands : [];
  const c = colors.out;
  if (commands.length === 0) {
    outLine('No commands: this identity may run none here.');
    return Exit.Ok;
  }
  const nameWidth = Math.max(...commands.map((command) => command.name.length));
  for (const command of commands) {
    const traits = [
      typeof command.timeLimitMs === 'number' ? `time limit ${formatDuration(command.timeLimitMs)}` : '',
      command.exclusive ? 'exclusive' : '',
      Array.isArray(command.approvers) && command.approvers.length ? `needs approval by ${command.approvers.join(' or ')}` : '',
      command.dryRun === false ? 'no dry run' : '',
    ].filter(Boolean);
    const limit = traits.length ? c.dim(`  (${traits.join(', ')})`) : '';
    outLine(`${c.bold(c.cyan(command.name.padEnd(nameWidth)))}  ${command.description ?? ''}${limit}`);
    const rows = argumentRows(command.schema);
    if (rows.length) {
      out(indentBlock(table(['ARGUMENT', 'TYPE', '', 'DESCRIPTION'], rows, c), ' '.repeat(nameWidth + 2)));
    }
    outLine(c.dim(`${' '.repeat(nameWidth + 2)}${usageLine(command)}`));
    outLine();
  }
  return Exit.Ok;
}

function argumentRows(schema: JsonSchema | undefined): string[][] {
  const properties: Record<string, JsonSchema> = schema?.properties ?? {};
  const required = new Set<string>(Array.isArray(schema?.required) ? schema!.required : []);
  return Object.entries(properties).map(([name, property]) => {
    const notes: string[] = [required.has(name) ? 'required' : 'optional'];
    if (typeof property.minimum === 'number' && typeof property.maximum === 'number') notes.push(`${property.minimum}–${property.maximum}`);
    else if (typeof property.minimum === 'number') notes.push(`≥ ${property.minimum}`);
    else if (typeof property.maximum === 'number') notes.push(`≤ ${property.maximum}`);
    if (typeof property.maxLength === 'number') notes.push(`≤ ${property.maxLength} chars`);
    if ('default' in property) notes.push(`default ${JSON.stringify(property.default)}`);
    return [name, typeLabel(property) || 'any', notes.join(', '), String(property.description ?? '')];
  });
}

function usageLine(command: CommandEntry): string {
  const properties: Record<string, JsonSchema> = command.schema?.properties ?? {};
  const required = new Set<string>(Array.isArray(command.schema?.required) ? command.schema!.required : []);
  const parts = Object.entries(properties).map(([name, property]) => {
    const word = `${name}=<${typeLabel(property) || 'value'}>`;
    return required.has(name) ? word : `[${word}]`;
  });
  return ['mm run', command.name, ...parts].join(' ');
}

function indentBlock(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => (line ? prefix + line : line))
    .join('\n');
}

export interface ExecutionsOptions {
  command?: string;
  limit?: string;
  cursor?: string;
}

export async function listExecutions(session: Session, options: ExecutionsOptions): Promise<number> {
  const limit = options.limit === undefined ? undefined : parseInteger(options.limit, '--limit', 1, 100);
  const response = ok(
    await session.api.request('GET', '/__manage__/executions', {
      query: { command: options.command, limit, cursor: options.cursor },
    }),
  );
  if (session.json) {
    outRaw(response.raw);
    return Exit.Ok;
  }
  const executions: any[] = Array.isArray(response.body?.executions) ? response.body.executions : [];
  const c = colors.out;
  if (executions.length === 0) outLine('No executions.');
  else {
    out(
      table(
        ['EXECUTION', 'COMMAND', 'STATUS', 'ACTOR', 'STARTED', 'DURATION'],
        executions.map((e) => [
          String(e.executionId ?? ''),
          String(e.command ?? ''),
          statusText(String(e.status ?? ''), c) + (e.dryRun ? c.dim(' (dry)') : ''),
          actorLabel(e.actor),
          String(e.startedAt ?? e.requestedAt ?? '').replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
          formatDuration(e.durationMs),
        ]),
        c,
      ),
    );
  }
  if (typeof response.body?.cursor === 'string') {
    errLine(colors.err.dim(`More: mm executions${options.command ? ` --command ${options.command}` : ''}${limit ? ` --limit ${limit}` : ''} --cursor ${response.body.cursor}`));
  }
  return Exit.Ok;
}

export async function show(session: Session, executionId: string): Promise<number> {
  if (!executionId.trim()) throw usageError('mm show needs an execution id (see mm executions).');
  const response = ok(await session.api.request('GET', executionPath(executionId.trim())));
  if (session.json) outRaw(response.raw);
  else out(formatOutcome(response.body, colors.out, { record: true }));
  return Exit.Ok;
}
