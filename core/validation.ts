import { Value } from '@sinclair/typebox/value';
import type { TObject } from '@sinclair/typebox';
import { InvalidArguments, type ArgumentIssue } from './errors.js';

/**
 * Applies the schema's defaults and checks `data` against it.
 * @returns a new object: the caller's `data` is never mutated
 * @throws InvalidArguments listing each bad field once
 */
export function validateArguments(schema: TObject, data: Record<string, unknown>): Record<string, unknown> {
  const args = Value.Default(schema, Value.Clone(data)) as Record<string, unknown>;
  if (Value.Check(schema, args)) return args;
  const issues: ArgumentIssue[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, args)) {
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    issues.push({ path: error.path, message: error.message });
    if (issues.length >= 50) break;
  }
  throw new InvalidArguments(issues);
}
