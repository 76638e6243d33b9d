/**
 * Prompts (@clack/prompts) and the progress spinner (yocto-spinner), both on
 * stderr so that stdout carries only results. Both are loaded on first use:
 * `mm --help` and non-interactive runs never pay for them.
 */
import { CliError, Exit } from './errors.js';
import { isInteractive, redact } from './io.js';

type Clack = typeof import('@clack/prompts');
let clack: Promise<Clack> | undefined;
const loadClack = () => (clack ??= import('@clack/prompts'));

function cancelled(): never {
  throw new CliError(Exit.Usage, 'Cancelled', 'Cancelled.');
}

function requireTerminal(what: string): void {
  if (!isInteractive()) throw new CliError(Exit.Usage, 'UsageError', `${what} needs a terminal to ask on.`);
}

const io = () => ({ input: process.stdin, output: process.stderr });

export async function askText(message: string, options: { initial?: string; placeholder?: string; required?: boolean; validate?: (value: string) => string | undefined } = {}): Promise<string> {
  requireTerminal(message);
  const p = await loadClack();
  const value = await p.text({
    message,
    ...io(),
    ...(options.initial !== undefined ? { initialValue: options.initial } : {}),
    ...(options.placeholder !== undefined ? { placeholder: options.placeholder } : {}),
    validate: (input) => {
      const text = (input ?? '').trim();
      if (options.required && !text) return 'Required.';
      return options.validate?.(text);
    },
  });
  if (p.isCancel(value)) cancelled();
  return (value ?? '').trim();
}

export async function askPassword(message: string): Promise<string> {
  requireTerminal(message);
  const p = await loadClack();
  const value = await p.password({ message, ...io(), validate: (input) => (input ? undefined : 'Required.') });
  if (p.isCancel(value)) cancelled();
  return value;
}

export async function askConfirm(message: string, initial = false): Promise<boolean> {
  requireTerminal(message);
  const p = await loadClack();
  const value = await p.confirm({ message, initialValue: initial, ...io() });
  if (p.isCancel(value)) cancelled();
  return value;
}

export async function askSelect<T extends string>(message: string, options: { value: T; label: string; hint?: string }[], initial?: T): Promise<T> {
  requireTerminal(message);
  const p = await loadClack();
  const value = await p.select<T>({
    message,
    ...io(),
    options: options.map((o) => ({ value: o.value, label: o.label, ...(o.hint ? { hint: o.hint } : {}) })) as never,
    ...(initial !== undefined ? { initialValue: initial } : {}),
  });
  if (p.isCancel(value)) cancelled();
  return value as T;
}

let interruptHint: string | undefined;
let activeStop: (() => void) | undefined;

/** What Ctrl-C prints while it applies (e.g. that the execution goes on without us). */
export function setInterruptHint(text: string | undefined): void {
  interruptHint = text;
}

let interruptHandlerInstalled = false;
function installInterruptHandler(): void {
  if (interruptHandlerInstalled) return;
  interruptHandlerInstalled = true;
  process.once('SIGINT', () => {
    activeStop?.();
    process.stderr.write(`\n${interruptHint ? `${redact(interruptHint)}\n` : ''}`);
    process.exit(130);
  });
}

export interface Progress {
  /** Replaces the text after the elapsed time. */
  update(text: string): void;
  stop(): void;
}

/**
 * A spinner with the elapsed time on stderr, only when stderr is a terminal
 * (and not `quiet`, as with --json); elsewhere nothing at all (scripts and CI logs stay clean).
 */
export async function startProgress(text: string, options: { quiet?: boolean } = {}): Promise<Progress> {
  installInterruptHandler();
  if (!process.stderr.isTTY || options.quiet) return { update() {}, stop() {} };
  const { default: yoctoSpinner } = await import('yocto-spinner');
  const started = Date.now();
  let label = text;
  const render = () => redact(`${label} ${formatElapsed(Date.now() - started)}`);
  const spinner = yoctoSpinner({ text: render(), stream: process.stderr, handleSignals: false }).start();
  const timer = setInterval(() => {
    spinner.text = render();
  }, 200);
  timer.unref();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    spinner.stop();
    if (activeStop === stop) activeStop = undefined;
  };
  activeStop = stop;
  return {
    update(next) {
      label = next;
      if (!stopped) spinner.text = render();
    },
    stop,
  };
}

export function formatElapsed(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
}
