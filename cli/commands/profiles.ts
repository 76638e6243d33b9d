/** `mm profiles` and `mm configure`. */
import {
  AUTH_METHODS,
  PROFILE_NAME,
  checkUrl,
  configPath,
  loadConfig,
  saveConfig,
  type AuthConfig,
  type AuthMethod,
  type Profile,
} from '../config.js';
import { readFileSync } from 'node:fs';
import { fingerprint, isFresh, readCache } from '../auth/cache.js';
import { readStoredSecret, storeSecret } from '../auth/secrets.js';
import { Exit, usageError } from '../errors.js';
import { colors, errLine, isInteractive, out, outLine, outRaw } from '../io.js';
import { table } from '../format.js';
import { askConfirm, askSelect, askText } from '../ui.js';

export function listProfiles(options: { json?: boolean }, env: NodeJS.ProcessEnv = process.env): number {
  const config = loadConfig(env);
  const names = Object.keys(config.profiles).sort();
  const active = env.MM_PROFILE || config.defaultProfile || (names.includes('default') ? 'default' : undefined);
  const rows = names.map((name) => {
    const profile = config.profiles[name]!;
    const cached = profile.auth ? readCache(name, env) : undefined;
    const usable = cached && cached.fingerprint === fingerprint(profile.auth);
    const token = !usable ? 'none' : isFresh(cached) ? `until ${new Date(cached.expiresAt).toISOString()}` : cached.refreshToken ? 'expired (refreshable)' : 'expired';
    return { name, profile, token };
  });
  if (options.json) {
    outRaw(
      JSON.stringify({
        configFile: configPath(env),
        defaultProfile: config.defaultProfile ?? null,
        active: active ?? null,
        profiles: Object.fromEntries(
          rows.map((r) => [r.name, { ...r.profile, cachedToken: r.token, ...(readStoredSecret(r.name, env) ? { clientSecret: 'stored' } : {}) }]),
        ),
      }),
    );
    return Exit.Ok;
  }
  if (names.length === 0) {
    outLine(`No profiles in ${configPath(env)}. Create one with: mm configure`);
    return Exit.Ok;
  }
  const c = colors.out;
  out(
    table(
      ['', 'PROFILE', 'URL', 'SIGN-IN', 'OUTPUT', 'CONFIRM', 'CACHED TOKEN'],
      rows.map((r) => [
        r.name === active ? c.green('*') : ' ',
        r.name,
        r.profile.url ?? '',
        r.profile.auth?.method ?? 'token',
        r.profile.output ?? 'human',
        r.profile.confirm ? c.yellow('yes') : 'no',
        r.token,
      ]),
      c,
    ),
  );
  errLine(colors.err.dim(`${configPath(env)}${active ? `; * = active (${env.MM_PROFILE ? 'MM_PROFILE' : 'default'})` : ''}`));
  return Exit.Ok;
}

export interface ConfigureOptions {
  profile?: string;
  url?: string;
  auth?: string;
  region?: string;
  userPoolId?: string;
  clientId?: string;
  username?: string;
  tokenUrl?: string;
  scope?: string;
  audience?: string;
  issuer?: string;
  tokenUse?: string;
  tokenCommand?: string;
  cognitoEndpoint?: string;
  resource?: string[];
  clientSecret?: string;
  clientAuth?: string;
  output?: string;
  confirm?: boolean;
  default?: boolean;
  json?: boolean;
}

const METHOD_LABELS: Record<AuthMethod, string> = {
  cognito: 'Cognito user pool (username, password, MFA)',
  device: 'OIDC device sign-in in a browser (any issuer with the device grant)',
  client_credentials: 'OAuth2 client credentials (CI; secret in MM_CLIENT_SECRET)',
  command: 'a command that prints a token (e.g. npm run -s token for the local stack)',
  token: 'none: I pass --token or MM_TOKEN',
};

/** Writes one profile, asking on a terminal for whatever the flags did not give. */
export async function configure(options: ConfigureOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const interactive = isInteractive();
  const config = loadConfig(env);
  const ask = async (flag: string | undefined, message: string, initial: string | undefined, required: boolean, validate?: (v: string) => string | undefined) => {
    if (flag !== undefined) {
      const problem = validate?.(flag);
      if (problem) throw usageError(`${message}: ${problem}`);
      return flag || undefined;
    }
    if (!interactive) return initial;
    return (await askText(message, { ...(initial ? { initial } : {}), required, ...(validate ? { validate } : {}) })) || undefined;
  };

  const name = (await ask(options.profile, 'Profile name', options.profile ?? 'default', true, (v) =>
    PROFILE_NAME.test(v) ? undefined : 'letters, digits, ".", "_" and "-" only',
  ))!;
  const existing: Profile = config.profiles[name] ?? {};
  const previous = existing.auth as Record<string, string | undefined> | undefined;

  const url = await ask(options.url, 'API base URL (e.g. https://abc123.execute-api.eu-west-1.amazonaws.com)', existing.url, true, (v) => {
    try {
      checkUrl(v, 'API URL', env);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  });
  if (!url) throw usageError('mm configure needs --url (no terminal to ask on).');
  const baseUrl = checkUrl(url, 'API URL', env);

  let method: AuthMethod;
  if (options.auth !== undefined) {
    if (!AUTH_METHODS.includes(options.auth as AuthMethod)) throw usageError(`--auth must be one of ${AUTH_METHODS.join(', ')}.`);
    method = options.auth as AuthMethod;
  } else if (interactive) {
    method = await askSelect(
      'How do you sign in?',
      (['cognito', 'device', 'client_credentials', 'command', 'token'] as const).map((m) => ({ value: m, label: METHOD_LABELS[m] })),
      existing.auth?.method,
    );
  } else method = existing.auth?.method ?? 'token';
  const same = previous?.method === method ? previous : {};

  let auth: AuthConfig;
  switch (method) {
    case 'token':
      auth = { method };
      break;
    case 'cognito': {
      const poolRegion = options.userPoolId?.split('_')[0];
      const region = await ask(options.region ?? poolRegion, 'AWS region of the user pool', same.region, true);
      const clientId = await ask(options.clientId, 'Cognito app client id', same.clientId, true);
      if (!region || !clientId) throw usageError('Cognito sign-in needs --region (or --user-pool-id) and --client-id.');
      const username = await ask(options.username, 'Username (empty: ask each time)', same.username, false);
      const tokenUse = await pickTokenUse(options.tokenUse, same.tokenUse);
      const endpoint = options.cognitoEndpoint ?? same.endpoint;
      if (endpoint) checkUrl(endpoint, 'Cognito endpoint', env);
      auth = { method, region, clientId, ...(username ? { username } : {}), ...(tokenUse ? { tokenUse } : {}), ...(endpoint ? { endpoint } : {}) };
      break;
    }
    case 'client_credentials': {
      const tokenUrl = await ask(options.tokenUrl, 'Token endpoint (e.g. https://auth.example.com/oauth2/token)', same.tokenUrl, true, urlProblem(env));
      if (!tokenUrl) throw usageError('Client-credentials sign-in needs --token-url.');
      const clientId = await ask(options.clientId, 'Client id (empty: --client-id or MM_CLIENT_ID each time)', same.clientId, false);
      const scope = await ask(options.scope, 'Scopes, space-separated (empty: none)', same.scope, false);
      const audience = options.audience ?? same.audience;
      const resource = pickResource(options.resource, previous?.method === method ? (existing.auth as { resource?: string | string[] }).resource : undefined);
      const clientAuth = pickClientAuth(options.clientAuth, same.clientAuth);
      auth = {
        method,
        tokenUrl,
        ...(clientId ? { clientId } : {}),
        ...(scope ? { scope } : {}),
        ...(audience ? { audience } : {}),
        ...(resource ? { resource } : {}),
        ...(clientAuth ? { clientAuth } : {}),
      };
      break;
    }
    case 'device': {
      const issuer = await ask(options.issuer, 'Issuer URL (its /.well-known/openid-configuration offers the device grant)', same.issuer, true, urlProblem(env));
      const clientId = await ask(options.clientId, 'Client id', same.clientId, true);
      if (!issuer || !clientId) throw usageError('Device sign-in needs --issuer and --client-id.');
      const scope = await ask(options.scope, 'Scopes', same.scope ?? 'openid offline_access', false);
      const tokenUse = await pickTokenUse(options.tokenUse, same.tokenUse);
      const audience = options.audience ?? same.audience;
      const resource = pickResource(options.resource, previous?.method === method ? (existing.auth as { resource?: string | string[] }).resource : undefined);
      const clientAuth = pickClientAuth(options.clientAuth, same.clientAuth);
      auth = {
        method,
        issuer: issuer.replace(/\/+$/, ''),
        clientId,
        ...(scope ? { scope } : {}),
        ...(audience ? { audience } : {}),
        ...(resource ? { resource } : {}),
        ...(tokenUse ? { tokenUse } : {}),
        ...(clientAuth ? { clientAuth } : {}),
      };
      break;
    }
    case 'command': {
      const command = await ask(options.tokenCommand, 'Command that prints a token', same.command ?? 'npm run -s token', true);
      if (!command) throw usageError('Command sign-in needs --token-command.');
      auth = { method, command };
      break;
    }
  }

  let output = options.output ?? existing.output;
  if (output !== undefined && output !== 'human' && output !== 'json') throw usageError('--output must be human or json.');
  if (options.output === undefined && interactive) {
    output = await askSelect('Default output', [
      { value: 'human', label: 'human-readable' },
      { value: 'json', label: 'JSON (the raw response body)' },
    ], existing.output ?? 'human');
  }
  let confirm = options.confirm ?? existing.confirm;
  if (options.confirm === undefined && interactive) {
    confirm = await askConfirm('Ask before every run (recommended for production)?', existing.confirm ?? /prod/i.test(name));
  }

  const profile: Profile = { url: baseUrl, auth, ...(output === 'json' ? { output: 'json' as const } : {}), ...(confirm ? { confirm: true } : {}) };
  config.profiles[name] = profile;
  const otherProfiles = Object.keys(config.profiles).filter((n) => n !== name);
  let makeDefault = options.default ?? (config.defaultProfile === undefined || otherProfiles.length === 0);
  if (options.default === undefined && interactive && !makeDefault && config.defaultProfile !== name) {
    makeDefault = await askConfirm(`Make "${name}" the default profile (now "${config.defaultProfile}")?`, false);
  }
  if (makeDefault) config.defaultProfile = name;
  let secretNote: string | undefined;
  if (options.clientSecret !== undefined) {
    const secret = options.clientSecret === '-' ? readStdin().trim() : options.clientSecret;
    if (options.clientSecret === '-' && !secret) throw usageError('--client-secret -: nothing on standard input.');
    if (secret && (method === 'token' || method === 'command')) throw usageError(`--client-secret does not apply to --auth ${method}.`);
    storeSecret(name, secret, env);
    secretNote = secret ? 'client secret stored (mode 0600, not in config.json)' : 'client secret removed';
  }
  const path = saveConfig(config, env);

  if (options.json) outRaw(JSON.stringify({ profile: name, default: config.defaultProfile === name, configFile: path, settings: profile }));
  else {
    outLine(`${colors.out.green('✔')} Wrote profile ${name}${config.defaultProfile === name ? ' (default)' : ''} to ${path}${secretNote ? `; ${secretNote}` : ''}`);
    if (method !== 'token') errLine(colors.err.dim(`Sign in now with: mm login${config.defaultProfile === name ? '' : ` --profile ${name}`}`));
  }
  return Exit.Ok;
}

async function pickTokenUse(flag: string | undefined, previous: string | undefined): Promise<'access' | 'id' | undefined> {
  const value = flag ?? previous;
  if (value !== undefined && value !== 'access' && value !== 'id') throw usageError('--token-use must be access or id.');
  return value === 'id' ? 'id' : undefined;
}

/** `--resource` (repeatable): absolute URIs without a fragment (RFC 8707 §2); one value "" removes the setting. */
function pickResource(flag: string[] | undefined, previous: string | string[] | undefined): string | string[] | undefined {
  if (flag === undefined) return previous;
  const values = flag.flatMap((v) => v.split(/\s+/)).filter((v) => v !== '');
  for (const value of values) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw usageError(`--resource "${value}" is not an absolute URI (e.g. https://api.example.com).`);
    }
    if (url.hash) throw usageError(`--resource "${value}" must not have a fragment (#…).`);
  }
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
}

function pickClientAuth(flag: string | undefined, previous: string | undefined): 'basic' | 'post' | undefined {
  const value = flag ?? previous;
  if (value === undefined || value === '') return undefined;
  if (value !== 'basic' && value !== 'post') throw usageError('--client-auth must be basic or post.');
  return value;
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

function urlProblem(env: NodeJS.ProcessEnv) {
  return (value: string): string | undefined => {
    try {
      checkUrl(value, 'URL', env);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };
}
