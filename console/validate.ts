/**
 * Client-side argument checks with the server's words: the same rules, order and
 * messages as TypeBox's `Errors` (src/validation.ts), for the JSON Schema that
 * `GET /__manage__` returns. One issue per path, at most 50, like the server.
 * What this does not know (formats, `$ref`, …) it leaves to the server.
 */
export interface Issue {
  path: string;
  message: string;
}

export type Schema = Record<string, any>;

const escapeKey = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
const defined = (value: unknown): boolean => value !== undefined;
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The schema's defaults applied to a copy of `data` (top level and nested objects), as the server does first. */
export function withDefaults(schema: Schema, data: unknown): unknown {
  if (schema.type === 'object' && isObject(data) && isObject(schema.properties)) {
    const out: Record<string, unknown> = { ...data };
    for (const [key, property] of Object.entries(schema.properties as Record<string, Schema>)) {
      if (out[key] === undefined && property && 'default' in property) out[key] = structuredClone(property.default);
      else if (out[key] !== undefined) out[key] = withDefaults(property, out[key]);
    }
    return out;
  }
  return data;
}

export function validate(schema: Schema, data: unknown): Issue[] {
  const issues: Issue[] = [];
  const seen = new Set<string>();
  for (const issue of visit(schema, '', withDefaults(schema, data))) {
    if (seen.has(issue.path)) continue;
    seen.add(issue.path);
    issues.push(issue);
    if (issues.length >= 50) break;
  }
  return issues;
}

function* visit(schema: Schema, path: string, value: unknown): Generator<Issue> {
  if (!schema || typeof schema !== 'object') return;
  if (Array.isArray(schema.anyOf)) {
    if (schema.anyOf.every((variant: Schema) => visit(variant, path, value).next().done !== true)) {
      yield { path, message: 'Expected union value' };
    }
    return;
  }
  if ('const' in schema) {
    if (value !== schema.const) yield { path, message: `Expected ${typeof schema.const === 'string' ? `'${schema.const}'` : schema.const}` };
    return;
  }
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return yield { path, message: 'Expected string' };
      if (defined(schema.minLength) && !(value.length >= schema.minLength)) yield { path, message: `Expected string length greater or equal to ${schema.minLength}` };
      if (defined(schema.maxLength) && !(value.length <= schema.maxLength)) yield { path, message: `Expected string length less or equal to ${schema.maxLength}` };
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value)) yield { path, message: `Expected string to match '${schema.pattern}'` };
      return;
    case 'integer':
    case 'number': {
      const kind = schema.type;
      const ok = kind === 'integer' ? Number.isInteger(value) : typeof value === 'number' && Number.isFinite(value);
      if (!ok) return yield { path, message: `Expected ${kind}` };
      const n = value as number;
      if (defined(schema.exclusiveMaximum) && !(n < schema.exclusiveMaximum)) yield { path, message: `Expected ${kind} to be less than ${schema.exclusiveMaximum}` };
      if (defined(schema.exclusiveMinimum) && !(n > schema.exclusiveMinimum)) yield { path, message: `Expected ${kind} to be greater than ${schema.exclusiveMinimum}` };
      if (defined(schema.maximum) && !(n <= schema.maximum)) yield { path, message: `Expected ${kind} to be less or equal to ${schema.maximum}` };
      if (defined(schema.minimum) && !(n >= schema.minimum)) yield { path, message: `Expected ${kind} to be greater or equal to ${schema.minimum}` };
      if (defined(schema.multipleOf) && !(n % schema.multipleOf === 0)) yield { path, message: `Expected ${kind} to be a multiple of ${schema.multipleOf}` };
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') yield { path, message: 'Expected boolean' };
      return;
    case 'null':
      if (value !== null) yield { path, message: 'Expected null' };
      return;
    case 'array':
      if (!Array.isArray(value)) return yield { path, message: 'Expected array' };
      if (defined(schema.minItems) && !(value.length >= schema.minItems)) yield { path, message: `Expected array length to be greater or equal to ${schema.minItems}` };
      if (defined(schema.maxItems) && !(value.length <= schema.maxItems)) yield { path, message: `Expected array length to be less or equal to ${schema.maxItems}` };
      if (schema.items) for (let i = 0; i < value.length; i++) yield* visit(schema.items, `${path}/${i}`, value[i]);
      if (schema.uniqueItems === true && new Set(value.map((item) => JSON.stringify(item))).size !== value.length) yield { path, message: 'Expected array elements to be unique' };
      return;
    case 'object': {
      if (!isObject(value)) return yield { path, message: 'Expected object' };
      const keys = Object.getOwnPropertyNames(value);
      if (defined(schema.minProperties) && !(keys.length >= schema.minProperties)) yield { path, message: `Expected object to have at least ${schema.minProperties} properties` };
      if (defined(schema.maxProperties) && !(keys.length <= schema.maxProperties)) yield { path, message: `Expected object to have no more than ${schema.maxProperties} properties` };
      const properties: Record<string, Schema> = isObject(schema.properties) ? (schema.properties as Record<string, Schema>) : {};
      const required: string[] = Array.isArray(schema.required) ? schema.required : [];
      const known = Object.getOwnPropertyNames(properties);
      for (const key of required) if (!keys.includes(key)) yield { path: `${path}/${escapeKey(key)}`, message: 'Expected required property' };
      if (schema.additionalProperties === false) {
        for (const key of keys) if (!known.includes(key)) yield { path: `${path}/${escapeKey(key)}`, message: 'Unexpected property' };
      } else if (isObject(schema.additionalProperties)) {
        for (const key of keys) if (!known.includes(key)) yield* visit(schema.additionalProperties, `${path}/${escapeKey(key)}`, value[key]);
      }
      for (const key of known) {
        if (required.includes(key) || Object.hasOwn(value, key)) {
          if (!required.includes(key) && value[key] === undefined) continue;
          if (required.includes(key) && !Object.hasOwn(value, key)) continue;
          yield* visit(properties[key]!, `${path}/${escapeKey(key)}`, value[key]);
        }
      }
      return;
    }
    default:
      return;
  }
}
