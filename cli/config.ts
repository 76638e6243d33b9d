/**
 * Profiles: `config.json` in the configuration directory, which is
 * `$MM_CONFIG_DIR`, else `$XDG_CONFIG_HOME/middle-management`, else
 * `~/.config/middle-management`.
 *
 * ```json
 * { "defaultProfile": "dev",
 *   "profiles": { "dev": { "url": "https://…", "auth": { "method": "cognito", … }, "output": "human", "confirm": false } } }
 * ```
 *
 * The file holds no secrets: tokens live in the token cache beside it, a
 * stored client secret in `secrets/<profile>.json` (both mode 0600), passwords
 * only in the environment or at a prompt.
 */
import { chmodSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, closeSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { usageError } from './errors.js';

export type AuthConfig =
  | { method: 'token' }
  | {
      method: 'cognito';
      region: string;
      clientId: string;
      username?: string;
      /** Which Cognito token to send: `access` (default) or `id` (match the server's MANAGE_COGNITO_TOKEN_USE). */
      tokenUse?: 'access' | 'id';
      /**
       * Another Cognito IdP endpoint (a VPC endpoint, an emulator such as cognito-local).
       * `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, then `AWS_ENDPOINT_URL`, win over it, as in the AWS SDK.
       */
      endpoint?: string;
    }
  | {
      method: 'client_credentials';
      tokenUrl: string;
      clientId?: string;
      scope?: string;
      audience?: string;
      /** RFC 8707 resource indicator(s): the API the access token is for. */
      resource?: string | string[];
      /** How the client authenticates at the token endpoint: HTTP Basic (default) or form fields. */
      clientAuth?: 'basic' | 'post';
    }
  | {
      method: 'device';
      issuer: string;
      clientId: string;
      scope?: string;
      audience?: string;
      /** RFC 8707 resource indicator(s): the API the access token is for. */
      resource?: string | string[];
      tokenUse?: 'access' | 'id';
      /** With a client secret: HTTP Basic (default) or form fields. */
      clientAuth?: 'basic' | 'post';
    }
  | {
      method: 'command';
      /** A shell command that prints a bearer token, e.g. `npm run -s token` for the local stack. */
      command: string;
    };

export type AuthMethod = AuthConfig['method'];
export const AUTH_METHODS: readonly AuthMethod[] = ['token', 'cognito', 'client_credentials', 'device', 'command'];

export interface Profile {
  url?: string;
  auth?: AuthConfig;
  output?: 'human' | 'json';
  /** Ask before every `mm run` (unless `--yes`); refuse without a terminal. */
  confirm?: boolean;
}

export interface ConfigFile {
  defaultProfile?: string;
  profiles: Record<string, Profile>;
}

export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MM_CONFIG_DIR) return env.MM_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'middle-management');
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'config.json');
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ConfigFile {
  const path = configPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw usageError(`Cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw usageError(`${path} is not valid JSON; fix or remove it (mm configure writes a new one).`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`${path} must hold a JSON object.`);
  }
  const config = parsed as Partial<ConfigFile>;
  const profiles = typeof config.profiles === 'object' && config.profiles !== null ? config.profiles : {};
  return { ...config, profiles } as ConfigFile;
}

export function saveConfig(config: ConfigFile, env: NodeJS.ProcessEnv = process.env): string {
  const path = configPath(env);
  writePrivateFile(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

/** Makes `dir` (mode 0700 when we create it). */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Writes a file readable by its owner only (0600), atomically: a reader never sees half of it. */
export function writePrivateFile(path: string, text: string): void {
  const dir = join(path, '..');
  ensurePrivateDir(dir);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

export interface ResolvedProfile {
  /** Undefined when no profile applies (MM_URL/MM_TOKEN only). */
  name?: string;
  profile: Profile;
}

/** `--profile`, else `$MM_PROFILE`, else the file's `defaultProfile`, else a profile named `default`, else none. */
export function resolveProfile(config: ConfigFile, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedProfile {
  const asked = flag ?? (env.MM_PROFILE || undefined);
  const known = Object.keys(config.profiles);
  if (asked !== undefined) {
    const profile = Object.hasOwn(config.profiles, asked) ? config.profiles[asked] : undefined;
    if (!profile) {
      throw usageError(
        `No profile "${asked}" in ${configPath(env)}${known.length ? ` (profiles: ${known.join(', ')})` : ''}. Create it with: mm configure --profile ${asked}`,
      );
    }
    return { name: asked, profile };
  }
  const fallback = config.defaultProfile ?? 'default';
  const profile = Object.hasOwn(config.profiles, fallback) ? config.profiles[fallback] : undefined;
  return profile ? { name: fallback, profile } : { profile: {} };
}

/** The API base URL: `--url`, else `$MM_URL`, else the profile's. */
export function resolveUrl(flag: string | undefined, env: NodeJS.ProcessEnv, profile: Profile): string {
  const url = flag ?? (env.MM_URL || undefined) ?? profile.url;
  if (!url) {
    throw usageError('No API URL: pass --url, set MM_URL, or create a profile with: mm configure');
  }
  return checkUrl(url, 'API URL');
}

/** An http(s) URL; plain http only to a loopback host (a token must not cross a network in clear). */
export function checkUrl(url: string, what: string, env: NodeJS.ProcessEnv = process.env): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(`The ${what} "${url}" is not a URL (expected e.g. https://api.example.com).`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw usageError(`The ${what} "${url}" must start with https://.`);
  }
  if (parsed.protocol === 'http:' && !isLoopback(parsed.hostname) && env.MM_INSECURE_HTTP !== '1') {
    throw usageError(
      `Refusing to send credentials over plain HTTP to ${parsed.host}; use https:// (plain http is only allowed to localhost).`,
    );
  }
  return url.replace(/\/+$/, '');
}

export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
