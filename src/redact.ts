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

/** Replaces secrets in a text; `secrets` holds the scalar values (as strings) that are redacted wherever they appear as a value. */
export type Scrubber = ((text: string) => string) & { readonly secrets: ReadonlySet<string> };

/**
 * Every form a sensitive value can take in output: the value itself (a string,
 * or a number as digits), JSON-escaped once and twice (a secret with `"` or `\`
 * inside a logged object, or inside an error message that quotes JSON), and for
 * an object or array value every scalar inside it and its own JSON.
 */
function sensitiveForms(value: unknown, forms: Set<string>, scalars: Set<string>, depth = 0): void {
  if (value === null || value === undefined || depth > 32) return;
  if (typeof value === 'object') {
    for (const item of Object.values(value as Record<string, unknown>)) sensitiveForms(item, forms, scalars, depth + 1);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (json !== undefined) addForms(json, forms);
    return;
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    const text = String(value);
    if (text.length < MIN_SCRUB_LENGTH) return;
    scalars.add(text);
    addForms(text, forms);
  }
}

function addForms(text: string, forms: Set<string>): void {
  if (text.length < MIN_SCRUB_LENGTH) return;
  forms.add(text);
  const once = JSON.stringify(text).slice(1, -1);
  forms.add(once);
  forms.add(JSON.stringify(once).slice(1, -1));
  // As JavaScript's String() or a template would print a number-like value with a sign or exponent, nothing more.
}

/**
 * Returns a function that replaces every occurrence of the sensitive argument
 * values in a text, in every form they can take there (raw, JSON-escaped,
 * the scalars inside an object), so that a command that logs or returns a
 * secret by mistake still does not leak it.
 */
export function secretScrubber(args: Record<string, unknown>, sensitive: readonly string[]): Scrubber {
  const forms = new Set<string>();
  const scalars = new Set<string>();
  for (const name of sensitive) {
    if (Object.hasOwn(args, name)) sensitiveForms(args[name], forms, scalars);
  }
  const ordered = [...forms].filter((form) => form.length >= MIN_SCRUB_LENGTH).sort((a, b) => b.length - a.length);
  const scrub = (text: string) => {
    let out = text;
    // Repeated until stable: removing one form can join two halves into another.
    for (let round = 0; round < 3; round++) {
      const before = out;
      for (const form of ordered) if (out.includes(form)) out = out.split(form).join(REDACTED);
      if (out === before) break;
    }
    return out;
  };
  return Object.assign(scrub, { secrets: scalars as ReadonlySet<string> });
}

/**
 * Scrubs every string inside a JSON value (keys included), and replaces every
 * number (or boolean) that is a sensitive value by the marker: `{"pin":482913}`
 * keeps no pin.
 */
export function scrubValue<T>(value: T, scrub: (text: string) => string): T {
  const secrets = (scrub as Partial<Scrubber>).secrets;
  const walk = (item: unknown, depth: number): unknown => {
    if (typeof item === 'string') return scrub(item);
    if (typeof item === 'number' || typeof item === 'bigint') return secrets?.has(String(item)) ? REDACTED : item;
    if (depth > 256) return item;
    if (Array.isArray(item)) return item.map((entry) => walk(entry, depth + 1));
    if (item && typeof item === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, entry] of Object.entries(item)) out[scrub(key)] = walk(entry, depth + 1);
      return out;
    }
    return item;
  };
  return walk(value, 0) as T;
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

/**
 * The most bytes one audit or state record may take as stored JSON. DynamoDB
 * refuses items over 400 KB (attribute names and values, UTF-8); a record is one
 * attribute of its item, beside a few hundred bytes of keys and hashes, so this
 * leaves a quarter of the item free.
 */
export const RECORD_MAX_BYTES = 300 * 1024;

/** What was cut from a record to make it fit: per field, how many lines (for output) and bytes. */
export interface Truncation {
  lines?: number;
  bytes: number;
}

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? 'null');

/**
 * The record itself if its JSON fits in `maxBytes`; else a copy cut to fit, that
 * says what was cut in `truncated`: first the output's last lines
 * (`truncated.output = { lines, bytes }`), then the result, the error message,
 * the arguments, and last any long string or list left. Bytes are the UTF-8 of
 * the stored JSON, escapes included.
 */
export function fitRecord<T extends object>(record: T, maxBytes: number = RECORD_MAX_BYTES): T {
  if (jsonBytes(record) <= maxBytes) return record;
  const out: Record<string, unknown> = { ...(record as Record<string, unknown>) };
  const truncated: Record<string, Truncation> = { ...((out.truncated as Record<string, Truncation> | undefined) ?? {}) };
  // Room for the `truncated` summary itself.
  const budget = maxBytes - 512;
  const size = () => jsonBytes({ ...out, truncated });

  if (Array.isArray(out.output) && size() > budget) {
    const lines = out.output as unknown[];
    out.output = [];
    let room = budget - size();
    const kept: unknown[] = [];
    for (const line of lines) {
      const cost = jsonBytes(line) + 1;
      if (cost > room) break;
      room -= cost;
      kept.push(line);
    }
    out.output = kept;
    const cut = lines.slice(kept.length);
    if (cut.length) truncated.output = { lines: cut.length, bytes: cut.reduce<number>((n, line) => n + jsonBytes(line), 0) };
  }
  for (const field of ['result', 'error', 'args']) {
    if (size() <= budget) break;
    if (!Object.hasOwn(out, field)) continue;
    const bytes = jsonBytes(out[field]);
    if (field === 'error' && out.error && typeof out.error === 'object') {
      const error = out.error as { code?: unknown; message?: unknown };
      out.error = { code: error.code, message: String(error.message ?? '').slice(0, 1024) };
    } else {
      out[field] = { truncated: true, bytes };
    }
    truncated[field] = { bytes };
  }
  if (size() > budget) {
    // Anything else that is large (a huge group list, a long identity): cut every long string and list.
    const shrink = (value: unknown, depth: number): unknown => {
      if (typeof value === 'string') return value.length > 256 ? `${value.slice(0, 256)}…` : value;
      if (Array.isArray(value)) return value.slice(0, 50).map((item) => shrink(item, depth + 1));
      if (value && typeof value === 'object' && depth < 8) {
        return Object.fromEntries(Object.entries(value).slice(0, 50).map(([key, item]) => [key.slice(0, 256), shrink(item, depth + 1)]));
      }
      return value;
    };
    for (const [field, value] of Object.entries(out)) {
      if (['executionId', 'command', 'status', 'kind'].includes(field)) continue;
      const bytes = jsonBytes(value);
      if (bytes <= 1024) continue;
      out[field] = shrink(value, 0);
      truncated[field] = { ...(truncated[field] ?? {}), bytes };
    }
  }
  return { ...out, truncated } as T;
}
