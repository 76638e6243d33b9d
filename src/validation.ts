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
