/**
 * Reading one variable of the environment: the parsers config.ts and its helper
 * modules (issuers.ts, console.ts) share, and the error they all throw. Kept
 * apart from config.ts so that the helpers need not import the module that
 * imports them.
 */

/** A misconfiguration, naming the variable: thrown at cold start, so a broken deployment fails at init instead of serving. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

export type Environment = Record<string, string | undefined>;

/** The trimmed value; undefined when unset or blank. */
export function text(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** Comma-separated values, trimmed, blanks dropped. */
export function list(env: Environment, name: string): string[] {
  return (text(env, name) ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** An http(s) URL; `what` names the part of the variable when it is not the whole (`MANAGE_JWT_ISSUERS[1].jwksUri`). */
export function url(value: string, name: string, what = name): URL {
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('not http(s)');
    return parsed;
  } catch {
    throw new ConfigError(name, `${what === name ? '' : `${what}: `}"${value}" is not an http(s) URL`);
  }
}
