/** Small option parsers shared by the commands. */
import { usageError } from '../errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A number of seconds, or a duration such as `90s`, `15m`, `2h`. */
export function parseSeconds(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(text.trim());
  if (!match) throw usageError(`${option} takes seconds or a duration like 90s, 15m, 2h, not "${text}".`);
  const value = Number(match[1]) * (match[2] ? UNIT_MS[match[2]]! / 1000 : 1);
  if (!(value > 0)) throw usageError(`${option} must be more than zero.`);
  return value;
}

/** An ISO-8601 date/time, or how long ago (`30m`, `24h`, `7d`): as ISO-8601. */
export function parseSince(text: string, now = Date.now()): string {
  const relative = /^(\d+)([smhdw])$/.exec(text.trim());
  if (relative) return new Date(now - Number(relative[1]) * UNIT_MS[relative[2]!]!).toISOString();
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim())) {
    const date = new Date(text.trim());
    if (!Number.isNaN(date.getTime())) return date.toISOString();
  }
  throw usageError(`--since takes an ISO-8601 date or time (2025-01-31, 2025-01-31T12:00:00Z) or an age like 30m, 24h, 7d; not "${text}".`);
}

/** A whole number within bounds. */
export function parseInteger(text: string, option: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
    throw usageError(`${option} must be a whole number from ${min} to ${max}, not "${text}".`);
  }
  return Number(text);
}
