/**
 * Structured JSON logs, one line per event. Callers pass only what is safe to
 * keep: ids, names, statuses, durations — never arguments, results or tokens.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogSink = (line: string) => void;

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

export function createLogger(sink: LogSink = (line) => console.log(line)): Logger {
  return {
    log(level, event, fields = {}) {
      sink(JSON.stringify({ level, event, ...fields }));
    },
  };
}

/** Name and message of an error for a log line; never its stack (it may quote arguments) nor its cause chain. */
export function describeError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message.slice(0, 500) };
  return { name: typeof error, message: String(error).slice(0, 500) };
}
