/**
 * Keeping secrets out of the audit, the logs and responses, and keeping each
 * audit item far below DynamoDB's 400 KB item limit.
 */

export const REDACTED = '[REDACTED]';

/** Replaces the sensitive top-level arguments by a marker; the rest is copied as is. */
export function redactArguments(args: Record<string, unknown>, sensitive: readonly string[]): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...args };
  for (const name of sensitive) {
    if (Object.hasOwn(copy, name)) copy[name] = REDACTED;
  }
  return copy;
}

/** Values shorter than this are not scrubbed from text: replacing every "a" would garble output and protect nothing. */
const MIN_SCRUB_LENGTH = 4;

/**
 * Returns a function that replaces every occurrence of the sensitive argument
 * values in a text, so that a command that logs or returns a secret by mistake
 * still does not leak it.
 */
export function secretScrubber(args: Record<string, unknown>, sensitive: readonly string[]): (text: string) => string {
  const secrets = sensitive
    .map((name) => args[name])
    .filter((value): value is string | number => (typeof value === 'string' || typeof value === 'number'))
    .map(String)
    .filter((value) => value.length >= MIN_SCRUB_LENGTH)
    .sort((a, b) => b.length - a.length);
  if (secrets.length === 0) return (text) => text;
  return (text) => secrets.reduce((out, secret) => out.split(secret).join(REDACTED), text);
}

/** Scrubs every string inside a JSON value. */
export function scrubValue<T>(value: T, scrub: (text: string) => string): T {
  if (typeof value === 'string') return scrub(value) as T;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, scrub)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[scrub(key)] = scrubValue(item, scrub);
    return out as T;
  }
  return value;
}

export const auditLimits = {
  /** Bytes of JSON kept for the arguments. */
  argsBytes: 32 * 1024,
  /** Bytes of JSON kept for the result. */
  resultBytes: 64 * 1024,
  outputLines: 200,
  outputLineChars: 1000,
  errorMessageChars: 4096,
} as const;

/** A JSON value if it fits in `maxBytes`, else a marker with its size and the start of its JSON. */
export function capJson(value: unknown, maxBytes: number): unknown {
  const json = JSON.stringify(value ?? null);
  if (Buffer.byteLength(json) <= maxBytes) return value ?? null;
  return { truncated: true, bytes: Buffer.byteLength(json), start: json.slice(0, Math.floor(maxBytes / 4)) };
}
