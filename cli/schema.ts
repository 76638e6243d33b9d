/**
 * `key=value` arguments → the `data` object, typed by the command's JSON Schema
 * (as `GET /__manage__` lists it), and a local check of `data` so that a typo
 * is an exit 2 with a clear message before anything is sent.
 *
 * - `key=value`: coerced to the property's type: integer, number, boolean
 *   (`true/false/yes/no/on/off/1/0`), null, array (`a,b,c` or a JSON array;
 *   repeating the key appends), object (JSON), string (as typed).
 * - `key:=json`: the value is JSON, taken as is (e.g. `tags:='["a,b"]'`, `name:='"007"'`).
 *
 * The server validates again and has the last word; this only catches what it
 * can understand (type, enum, const, bounds, lengths, pattern, required, unknown keys).
 */

export type JsonSchema = Record<string, any>;

export interface ArgumentIssue {
  /** JSON pointer into `data`, as the server reports it. */
  path: string;
  message: string;
}

export interface ParsedArguments {
  data: Record<string, unknown>;
  issues: ArgumentIssue[];
}

const ASSIGNMENT = /^([^=:]+?)(:=|=)([\s\S]*)$/;

/** Turns `key=value` words into `data`, on top of `base` (from --data-json / --data-file). */
export function parseAssignments(
  words: string[],
  schema: JsonSchema | undefined,
  base: Record<string, unknown> = {},
): ParsedArguments {
  const data: Record<string, unknown> = { ...base };
  const issues: ArgumentIssue[] = [];
  const seen = new Set<string>();
  const properties: Record<string, JsonSchema> = isObject(schema?.properties) ? schema!.properties : {};
  for (const word of words) {
    const match = ASSIGNMENT.exec(word);
    if (!match || !match[1]!.trim()) {
      issues.push({ path: '', message: `"${word}" is not key=value` });
      continue;
    }
    const key = match[1]!.trim();
    const operator = match[2]!;
    const raw = match[3]!;
    const path = `/${escapePointer(key)}`;
    const propertySchema = Object.hasOwn(properties, key) ? properties[key] : additionalSchema(schema);
    if (propertySchema === undefined) {
      issues.push({ path, message: unknownKeyMessage(key, Object.keys(properties)) });
      continue;
    }
    let value: unknown;
    if (operator === ':=') {
      try {
        value = JSON.parse(raw);
      } catch {
        issues.push({ path, message: `${key}:= needs a JSON value, got ${quote(raw)}` });
        continue;
      }
    } else {
      const coerced = coerce(raw, propertySchema, path);
      if ('error' in coerced) {
        issues.push({ path, message: coerced.error });
        continue;
      }
      value = coerced.value;
    }
    if (seen.has(key)) {
      const previous = data[key];
      if (Array.isArray(previous) && acceptsType(propertySchema, 'array')) {
        data[key] = [...previous, ...(Array.isArray(value) ? value : [value])];
        continue;
      }
      issues.push({ path, message: `${key} is given more than once` });
      continue;
    }
    seen.add(key);
    data[key] = value;
  }
  return { data, issues };
}

/** Checks `data` against the schema as far as this module understands it. */
export function checkData(data: Record<string, unknown>, schema: JsonSchema | undefined): ArgumentIssue[] {
  if (!isObject(schema)) return [];
  const issues: ArgumentIssue[] = [];
  const properties: Record<string, JsonSchema> = isObject(schema.properties) ? schema.properties : {};
  for (const key of Object.keys(data)) {
    const path = `/${escapePointer(key)}`;
    const propertySchema = Object.hasOwn(properties, key) ? properties[key] : additionalSchema(schema);
    if (propertySchema === undefined) issues.push({ path, message: unknownKeyMessage(key, Object.keys(properties)) });
    else issues.push(...checkValue(data[key], propertySchema, path));
  }
  for (const key of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
    if (!Object.hasOwn(data, key)) {
      issues.push({ path: `/${escapePointer(key)}`, message: `missing required argument ${key}${describeType(properties[key])}` });
    }
  }
  return issues;
}

function additionalSchema(schema: JsonSchema | undefined): JsonSchema | undefined {
  if (!isObject(schema)) return {};
  if (schema.additionalProperties === false) return undefined;
  return isObject(schema.additionalProperties) ? schema.additionalProperties : {};
}

type Coerced = { value: unknown } | { error: string };

const TYPE_ORDER = ['integer', 'number', 'boolean', 'null', 'array', 'object', 'string'] as const;

/** One `key=value` value, typed by its schema. */
export function coerce(raw: string, schema: JsonSchema, path = ''): Coerced {
  if (!isObject(schema)) return { value: raw };
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    // Non-string readings first: "5" for integer|string is the integer 5.
    const ordered = [...alternatives.filter((a) => !isStringOnly(a)), ...alternatives.filter(isStringOnly)];
    for (const alternative of ordered) {
      const result = coerce(raw, { ...schema, anyOf: undefined, oneOf: undefined, ...alternative }, path);
      if ('value' in result && checkValue(result.value, alternative, path).length === 0) return result;
    }
    return { error: `${label(path)} does not match any allowed form${describeAlternatives(alternatives)}, got ${quote(raw)}` };
  }
  if ('const' in schema) {
    return String(schema.const) === raw
      ? { value: schema.const }
      : { error: `${label(path)} must be ${JSON.stringify(schema.const)}, got ${quote(raw)}` };
  }
  if (Array.isArray(schema.enum)) {
    const found = schema.enum.find((option: unknown) => String(option) === raw);
    return found !== undefined || (schema.enum.includes(null) && raw === 'null')
      ? { value: found ?? null }
      : { error: `${label(path)} must be one of ${schema.enum.map((o: unknown) => JSON.stringify(o)).join(', ')}, got ${quote(raw)}` };
  }
  const types = typesOf(schema);
  if (types.length === 0) return { value: raw };
  // The first reading that fits wins; a reading of the right type that breaks a bound explains best.
  let boundError: string | undefined;
  let typeError: string | undefined;
  for (const type of TYPE_ORDER) {
    if (!types.includes(type)) continue;
    const result = coerceAs(type, raw, schema, path);
    if ('value' in result) {
      const problems = checkValue(result.value, schema, path);
      if (problems.length === 0) return result;
      boundError ??= problems[0]!.message;
    } else typeError ??= result.error;
  }
  return { error: boundError ?? typeError ?? `${label(path)} cannot be ${types.join(' or ')}, got ${quote(raw)}` };
}

function coerceAs(type: (typeof TYPE_ORDER)[number], raw: string, schema: JsonSchema, path: string): Coerced {
  const text = raw.trim();
  switch (type) {
    case 'integer':
      if (/^[+-]?\d+$/.test(text) && Number.isSafeInteger(Number(text))) return { value: Number(text) };
      return { error: `${label(path)} must be an integer, got ${quote(raw)}` };
    case 'number':
      if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) && Number.isFinite(Number(text))) return { value: Number(text) };
      return { error: `${label(path)} must be a number, got ${quote(raw)}` };
    case 'boolean': {
      const lower = text.toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(lower)) return { value: true };
      if (['false', 'no', 'off', '0'].includes(lower)) return { value: false };
      return { error: `${label(path)} must be true or false, got ${quote(raw)}` };
    }
    case 'null':
      return text === 'null' ? { value: null } : { error: `${label(path)} must be null, got ${quote(raw)}` };
    case 'array': {
      if (text.startsWith('[')) {
        try {
          const parsed = JSON.parse(text) as unknown;
          if (Array.isArray(parsed)) return { value: parsed };
        } catch {
          /* falls through */
        }
        return { error: `${label(path)} must be a JSON array or comma-separated values, got ${quote(raw)}` };
      }
      if (text === '') return { value: [] };
      const itemSchema: JsonSchema = isObject(schema.items) ? schema.items : {};
      const items: unknown[] = [];
      const parts = raw.split(',');
      for (let i = 0; i < parts.length; i++) {
        const item = coerce(parts[i]!.trim(), itemSchema, `${path}/${items.length}`);
        if ('error' in item) return item;
        items.push(item.value);
      }
      return { value: items };
    }
    case 'object': {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (isObject(parsed)) return { value: parsed };
      } catch {
        /* falls through */
      }
      return { error: `${label(path)} must be a JSON object, got ${quote(raw)}` };
    }
    case 'string':
      return { value: raw };
  }
}

/** Problems of one value against its schema (the keywords this module knows). */
export function checkValue(value: unknown, schema: JsonSchema, path: string): ArgumentIssue[] {
  if (!isObject(schema)) return [];
  const issue = (message: string): ArgumentIssue[] => [{ path, message }];
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    return alternatives.some((a) => checkValue(value, a, path).length === 0)
      ? []
      : issue(`${label(path)} does not match any allowed form${describeAlternatives(alternatives)}`);
  }
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    return issue(`${label(path)} must be ${JSON.stringify(schema.const)}`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((o: unknown) => JSON.stringify(o) === JSON.stringify(value))) {
    return issue(`${label(path)} must be one of ${schema.enum.map((o: unknown) => JSON.stringify(o)).join(', ')}`);
  }
  const types = typesOf(schema);
  if (types.length > 0 && !types.some((t) => hasType(value, t))) {
    return issue(`${label(path)} must be ${types.map(article).join(' or ')}, got ${JSON.stringify(value)}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) return issue(`${label(path)} must be ≥ ${schema.minimum}, got ${value}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) return issue(`${label(path)} must be ≤ ${schema.maximum}, got ${value}`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) {
      return issue(`${label(path)} must be > ${schema.exclusiveMinimum}, got ${value}`);
    }
    if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) {
      return issue(`${label(path)} must be < ${schema.exclusiveMaximum}, got ${value}`);
    }
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) return issue(`${label(path)} must be at least ${schema.minLength} characters`);
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) return issue(`${label(path)} must be at most ${schema.maxLength} characters`);
    if (typeof schema.pattern === 'string') {
      try {
        if (!new RegExp(schema.pattern, 'u').test(value)) return issue(`${label(path)} must match ${schema.pattern}`);
      } catch {
        /* a pattern JavaScript cannot read is left to the server */
      }
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) return issue(`${label(path)} needs at least ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) return issue(`${label(path)} takes at most ${schema.maxItems} items`);
    if (isObject(schema.items)) {
      for (let i = 0; i < value.length; i++) {
        const problems = checkValue(value[i], schema.items, `${path}/${i}`);
        if (problems.length) return problems;
      }
    }
  }
  return [];
}

export function typesOf(schema: JsonSchema | undefined): string[] {
  if (!isObject(schema)) return [];
  if (typeof schema.type === 'string') return [schema.type];
  if (Array.isArray(schema.type)) return schema.type.filter((t: unknown): t is string => typeof t === 'string');
  return [];
}

function acceptsType(schema: JsonSchema, type: string): boolean {
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alternatives)) return alternatives.some((a) => acceptsType(a, type));
  return typesOf(schema).includes(type);
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    default:
      return true;
  }
}

function isStringOnly(schema: JsonSchema): boolean {
  const types = typesOf(schema);
  return types.length === 1 && types[0] === 'string' && !('const' in schema) && !Array.isArray(schema.enum);
}

/** ` (integer)` and the like, for messages and help. */
export function describeType(schema: JsonSchema | undefined): string {
  const text = typeLabel(schema);
  return text ? ` (${text})` : '';
}

/** `integer`, `string[]`, `"a" | "b"`, … for `mm commands`. */
export function typeLabel(schema: JsonSchema | undefined): string {
  if (!isObject(schema)) return '';
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alternatives)) return alternatives.map(typeLabel).filter(Boolean).join(' | ');
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map((o: unknown) => JSON.stringify(o)).join(' | ');
  const types = typesOf(schema);
  return types
    .map((t) => (t === 'array' ? `${typeLabel(schema.items) || 'any'}[]` : t))
    .join(' | ');
}

function describeAlternatives(alternatives: JsonSchema[]): string {
  const text = alternatives.map(typeLabel).filter(Boolean).join(' | ');
  return text ? ` (${text})` : '';
}

function unknownKeyMessage(key: string, known: string[]): string {
  const suggestion = closest(key, known);
  if (known.length === 0) return `unknown argument ${key}: this command takes no arguments`;
  return `unknown argument ${key}${suggestion ? ` (did you mean ${suggestion}?)` : ''}; known: ${known.join(', ')}`;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

function label(path: string): string {
  const name = path.slice(1).split('/').map(unescapePointer).join('.');
  return name || 'data';
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function quote(raw: string): string {
  return JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw);
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function isObject(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
