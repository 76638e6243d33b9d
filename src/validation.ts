// Each function on its own, not the `Value` namespace: that object holds every
// value operation (Cast, Convert, Diff, Mutate, …) and keeps them all in the bundle.
import { Check, Clone, Default } from '@sinclair/typebox/value';
import { Errors } from '@sinclair/typebox/errors';
import type { TObject } from '@sinclair/typebox';
import { InvalidArguments, type ArgumentIssue } from './errors.js';

/** Deeper `data` is refused before anything recursive walks it (TypeBox's Clone, Check and Errors recurse). */
export const MAX_ARGUMENT_DEPTH = 32;

/**
 * The first structural problem of `data`, found without recursion: nesting deeper than
 * {@link MAX_ARGUMENT_DEPTH}, or a `__proto__` key (Clone would turn it into the clone's
 * prototype, hiding it from the strict schema and exposing its values to the command).
 */
function structuralIssue(data: unknown): ArgumentIssue | undefined {
  const pending: [unknown, string, number][] = [[data, '', 0]];
  while (pending.length > 0) {
    const [value, path, depth] = pending.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_ARGUMENT_DEPTH) return { path, message: `is nested more than ${MAX_ARGUMENT_DEPTH} levels deep` };
    for (const key of Object.keys(value)) {
      const child = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (key === '__proto__') return { path: child, message: 'Unexpected property' };
      pending.push([(value as Record<string, unknown>)[key], child, depth + 1]);
    }
  }
  return undefined;
}

/**
 * Applies the schema's defaults and checks `data` against it.
 * @returns a new object: the caller's `data` is never mutated
 * @throws InvalidArguments listing each bad field once
 */
export function validateArguments(schema: TObject, data: Record<string, unknown>): Record<string, unknown> {
  const structural = structuralIssue(data);
  if (structural) throw new InvalidArguments([structural]);
  const args = Default(schema, Clone(data)) as Record<string, unknown>;
  if (Check(schema, args)) return args;
  const issues: ArgumentIssue[] = [];
  const seen = new Set<string>();
  for (const error of Errors(schema, args)) {
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    issues.push({ path: error.path, message: error.message });
    if (issues.length >= 50) break;
  }
  throw new InvalidArguments(issues);
}

/**
 * True if the JSON of `value` is longer than `maxBytes` (UTF-8), found without
 * recursion (an event nested 30,000 levels deep must not overflow the stack) and
 * stopping as soon as the limit is passed. Approximate by a few bytes per string
 * (escapes are counted as the characters that need them).
 */
export function jsonBytesOver(value: unknown, maxBytes: number): boolean {
  let total = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') total += Buffer.byteLength(item) + 2;
    else if (typeof item === 'number' || typeof item === 'boolean' || typeof item === 'bigint') total += String(item).length;
    else if (item === null || item === undefined) total += 4;
    else if (Array.isArray(item)) {
      total += 1 + item.length;
      for (const entry of item) pending.push(entry);
    } else if (typeof item === 'object') {
      const keys = Object.keys(item);
      total += 1 + keys.length;
      for (const key of keys) {
        total += Buffer.byteLength(key) + 3;
        pending.push((item as Record<string, unknown>)[key]);
      }
    }
    if (total > maxBytes) return true;
  }
  return false;
}
