/**
 * Everything the CLI writes goes through here: stdout for results, stderr for
 * people (progress, prompts, errors). Known secrets (tokens, refresh tokens,
 * client secrets, passwords) are replaced by `[REDACTED]` in every write, so a
 * token cannot reach the terminal or a log by accident; only `mm token`
 * writes one, through {@link writeSecretToStdout}.
 */
import pc from 'picocolors';

type Stream = NodeJS.WriteStream;

const secrets = new Set<string>();

/** Registers a value that must never be printed. Short values are ignored (they would mangle ordinary text). */
export function registerSecret(value: string | undefined): void {
  if (typeof value === 'string' && value.length >= 8) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  return out;
}

/** Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colorEnabled(stream: Stream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return Boolean(stream.isTTY);
}

export const colors = {
  out: pc.createColors(colorEnabled(process.stdout)),
  err: pc.createColors(colorEnabled(process.stderr)),
};

export function out(text: string): void {
  process.stdout.write(redact(text));
}

export function err(text: string): void {
  process.stderr.write(redact(text));
}

export function outLine(text = ''): void {
  out(`${text}\n`);
}

export function errLine(text = ''): void {
  err(`${text}\n`);
}

/** A response body, byte for byte, and a newline unless it ends with one: what `--json` prints. */
export function outRaw(body: string): void {
  out(body.endsWith('\n') ? body : `${body}\n`);
}

/** The one unredacted write: `mm token`. */
export function writeSecretToStdout(secret: string): void {
  process.stdout.write(`${secret}\n`);
}

export const isInteractive = (): boolean => Boolean(process.stdin.isTTY && process.stderr.isTTY);

/** Waits until stdout and stderr have taken everything written, then exits. */
export async function exit(code: number): Promise<never> {
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}

function flush(stream: Stream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write('', () => resolve());
  });
}
