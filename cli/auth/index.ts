/**
 * Where the bearer token comes from, in order (CONTRACT §7, issue 3):
 * `--token`, `$MM_TOKEN`, the profile's cached token while it is fresh, that
 * cache's refresh token, and last the profile's sign-in method.
 *
 * Without a profile, `$MM_TOKEN_URL` + `$MM_CLIENT_ID` (or `--client-id`) +
 * `$MM_CLIENT_SECRET` sign in with client credentials: CI needs no config file.
 */
import { exec } from 'node:child_process';
import type { AuthConfig, Profile } from '../config.js';
import { CliError, Exit, notAuthenticated } from '../errors.js';
import { errLine, isInteractive, registerSecret, colors } from '../io.js';
import { askPassword, askSelect, askText, startProgress } from '../ui.js';
import { clearCache, expiryOf, fingerprint, isFresh, readCache, writeCache, type CachedToken } from './cache.js';
import { clientCredentials, deviceGrant, refreshGrant, type TokenSet } from './oauth.js';
import { cognitoRefresh, cognitoSignIn } from './cognito.js';

export type TokenSource = 'flag' | 'env' | 'cache' | 'refresh' | 'signin';

export interface AuthOptions {
  profileName?: string;
  profile: Profile;
  flags: { token?: string; clientId?: string };
  env: NodeJS.ProcessEnv;
}

export interface SignedIn {
  token: string;
  source: TokenSource;
  expiresAt?: number;
}

export class Authenticator {
  private current?: SignedIn;
  private readonly auth: AuthConfig | undefined;

  constructor(private readonly options: AuthOptions) {
    registerSecret(options.flags.token);
    registerSecret(options.env.MM_TOKEN);
    registerSecret(options.env.MM_CLIENT_SECRET);
    registerSecret(options.env.MM_PASSWORD);
    this.auth = effectiveAuth(options);
  }

  /** The method sign-in would use, for messages. */
  get method(): string | undefined {
    return this.auth?.method;
  }

  async token(): Promise<string> {
    return (await this.signedIn()).token;
  }

  async signedIn(): Promise<SignedIn> {
    if (this.current) return this.current;
    const { flags, env } = this.options;
    if (flags.token !== undefined) {
      if (!flags.token.trim()) throw notAuthenticated('--token is empty.');
      return (this.current = { token: flags.token.trim(), source: 'flag' });
    }
    if (env.MM_TOKEN) return (this.current = { token: env.MM_TOKEN.trim(), source: 'env' });
    const cached = this.readFreshCache();
    if (cached) return (this.current = { token: cached.accessToken, source: 'cache', expiresAt: cached.expiresAt });
    return (this.current = await this.refreshOrSignIn());
  }

  /**
   * After the server refused the token (401): a token we chose ourselves
   * (cache, refresh) is dropped and replaced by a new sign-in once. A token the
   * caller gave (--token, MM_TOKEN) is never replaced.
   */
  async renewAfterRejection(): Promise<string | undefined> {
    const source = this.current?.source;
    if (source !== 'cache' && source !== 'refresh') return undefined;
    if (this.options.profileName) clearCache(this.options.profileName, this.options.env);
    this.current = await this.signIn();
    return this.current.token;
  }

  /** `mm login`: a new sign-in whatever the cache holds (a given token is not a sign-in). */
  async login(): Promise<SignedIn> {
    this.current = await this.signIn();
    return this.current;
  }

  logout(): boolean {
    return this.options.profileName ? clearCache(this.options.profileName, this.options.env) : false;
  }

  /** What the cache holds for this profile's settings, fresh or not. */
  cached(): CachedToken | undefined {
    const { profileName, env } = this.options;
    if (!profileName || !this.auth) return undefined;
    const entry = readCache(profileName, env);
    return entry && entry.fingerprint === this.fingerprint() ? entry : undefined;
  }

  private readFreshCache(): CachedToken | undefined {
    const entry = this.cached();
    return entry && isFresh(entry) ? entry : undefined;
  }

  private fingerprint(): string {
    return fingerprint(this.auth);
  }

  private async refreshOrSignIn(): Promise<SignedIn> {
    const stale = this.cached();
    if (stale?.refreshToken) {
      try {
        const tokens = await this.refresh(stale);
        if (tokens) return this.store(tokens, 'refresh', stale.tokenEndpoint);
      } catch (error) {
        // A refresh token that no longer works means signing in again; a network failure is reported as such.
        if (!(error instanceof CliError) || error.exitCode !== Exit.NotAuthenticated) throw error;
      }
    }
    return this.signIn();
  }

  private async refresh(stale: CachedToken): Promise<TokenSet | undefined> {
    const auth = this.auth;
    const refreshToken = stale.refreshToken!;
    switch (auth?.method) {
      case 'cognito':
        return cognitoRefresh(auth, refreshToken);
      case 'device':
        return stale.tokenEndpoint ? refreshGrant(stale.tokenEndpoint, refreshToken, auth.clientId) : undefined;
      case 'client_credentials': {
        const secret = this.options.env.MM_CLIENT_SECRET;
        return refreshGrant(auth.tokenUrl, refreshToken, this.clientId(auth), secret || undefined);
      }
      default:
        return undefined;
    }
  }

  private async signIn(): Promise<SignedIn> {
    const auth = this.auth;
    const where = this.options.profileName ? `profile "${this.options.profileName}"` : 'no profile';
    if (!auth) {
      throw notAuthenticated(
        this.options.profileName
          ? `No token: the profile "${this.options.profileName}" has no sign-in method; pass --token, set MM_TOKEN, or set one with mm configure --profile ${this.options.profileName}.`
          : 'No token: pass --token, set MM_TOKEN, or create a profile with a sign-in method (mm configure).',
      );
    }
    switch (auth.method) {
      case 'token':
        throw notAuthenticated(`The ${where} signs in with a token you give it: pass --token or set MM_TOKEN.`);
      case 'client_credentials': {
        const secret = this.options.env.MM_CLIENT_SECRET;
        if (!secret) throw notAuthenticated('Client-credentials sign-in needs the client secret in MM_CLIENT_SECRET.');
        const clientId = this.clientId(auth);
        const tokens = await clientCredentials({
          tokenUrl: auth.tokenUrl,
          clientId,
          clientSecret: secret,
          ...(auth.scope ? { scope: auth.scope } : {}),
          ...(auth.audience ? { audience: auth.audience } : {}),
          ...(auth.clientAuth ? { clientAuth: auth.clientAuth } : {}),
        });
        return this.store(tokens, 'signin', auth.tokenUrl);
      }
      case 'cognito': {
        const env = this.options.env;
        const username = auth.username ?? env.MM_USERNAME ?? (isInteractive() ? await askText('Cognito username', { required: true }) : undefined);
        const password = env.MM_PASSWORD ?? (isInteractive() ? await askPassword(`Password for ${username}`) : undefined);
        if (!username || !password) {
          throw notAuthenticated('Cognito sign-in needs a terminal to ask for the password (or MM_USERNAME and MM_PASSWORD).');
        }
        const progress = await startProgress('Signing in to Cognito');
        let tokens: TokenSet;
        try {
          tokens = await cognitoSignIn(auth, { username, password }, {
            code: async (challenge, hint) => {
              if (env.MM_MFA_CODE) return env.MM_MFA_CODE;
              progress.stop();
              if (!isInteractive()) throw notAuthenticated(`Cognito asks for an MFA code (${challenge}) and there is no terminal to ask on (or set MM_MFA_CODE).`);
              const label = challenge === 'SOFTWARE_TOKEN_MFA' ? 'Code from your authenticator app' : `Code${hint}`;
              return askText(label, { required: true, validate: (v) => (/^\d{4,10}$/.test(v) ? undefined : 'Digits only.') });
            },
            newPassword: async () => {
              progress.stop();
              if (!isInteractive()) throw notAuthenticated('Cognito requires a new password; sign in once on a terminal.');
              return askPassword('Cognito requires a new password: choose one');
            },
            selectMfa: async (choices) => {
              if (env.MM_MFA_CODE || !isInteractive()) return choices.includes('SOFTWARE_TOKEN_MFA') ? 'SOFTWARE_TOKEN_MFA' : choices[0]!;
              progress.stop();
              return askSelect('Which second factor?', choices.map((c) => ({ value: c, label: c })));
            },
          });
        } finally {
          progress.stop();
        }
        return this.store(auth.tokenUse === 'id' ? { ...tokens, accessToken: tokens.idToken ?? tokens.accessToken } : tokens, 'signin');
      }
      case 'device': {
        let progress: ReturnType<typeof startProgress> | undefined;
        try {
          const tokens = await deviceGrant({
            issuer: auth.issuer,
            clientId: auth.clientId,
            ...(auth.scope ? { scope: auth.scope } : {}),
            ...(auth.audience ? { audience: auth.audience } : {}),
            notify: (info) => {
              const c = colors.err;
              errLine(`To sign in, open ${c.bold(info.verificationUri)} and enter the code ${c.bold(c.cyan(info.userCode))}`);
              if (info.verificationUriComplete) errLine(`(or open ${info.verificationUriComplete})`);
              progress = startProgress('Waiting for you to approve the sign-in');
            },
          });
          const chosen = auth.tokenUse === 'id' ? { ...tokens, accessToken: tokens.idToken ?? tokens.accessToken } : tokens;
          return this.store(chosen, 'signin', tokens.tokenEndpoint);
        } finally {
          (await progress)?.stop();
        }
      }
      case 'command':
        return this.store(await runTokenCommand(auth.command), 'signin');
    }
  }

  private clientId(auth: AuthConfig & { method: 'client_credentials' }): string {
    const id = this.options.flags.clientId ?? this.options.env.MM_CLIENT_ID ?? auth.clientId;
    if (!id) throw notAuthenticated('Client-credentials sign-in needs a client id: --client-id, MM_CLIENT_ID or the profile.');
    return id;
  }

  private store(tokens: TokenSet, source: TokenSource, tokenEndpoint?: string): SignedIn {
    const expiresAt = expiryOf(tokens.accessToken, tokens.expiresIn);
    const { profileName, env } = this.options;
    if (profileName && this.auth) {
      writeCache(
        profileName,
        {
          accessToken: tokens.accessToken,
          ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
          expiresAt,
          method: this.auth.method,
          fingerprint: this.fingerprint(),
          ...(tokenEndpoint ? { tokenEndpoint } : {}),
        },
        env,
      );
    }
    return { token: tokens.accessToken, source, expiresAt };
  }
}

/** The profile's sign-in settings; for client credentials, the flag and environment fill in. */
function effectiveAuth({ profile, flags, env }: AuthOptions): AuthConfig | undefined {
  if (profile.auth) {
    if (profile.auth.method === 'client_credentials') {
      const clientId = flags.clientId ?? env.MM_CLIENT_ID ?? profile.auth.clientId;
      return { ...profile.auth, ...(clientId ? { clientId } : {}) };
    }
    return profile.auth;
  }
  if (env.MM_TOKEN_URL) {
    const clientId = flags.clientId ?? env.MM_CLIENT_ID;
    return {
      method: 'client_credentials',
      tokenUrl: env.MM_TOKEN_URL,
      ...(clientId ? { clientId } : {}),
      ...(env.MM_SCOPE ? { scope: env.MM_SCOPE } : {}),
      ...(env.MM_AUDIENCE ? { audience: env.MM_AUDIENCE } : {}),
    };
  }
  return undefined;
}

function runTokenCommand(command: string): Promise<TokenSet> {
  return new Promise((resolve, reject) => {
    exec(command, { timeout: 60_000, maxBuffer: 1 << 20, windowsHide: true }, (error, stdout, stderr) => {
      const token = String(stdout).trim().split(/\s+/).pop() ?? '';
      registerSecret(token);
      if (error || !token) {
        const detail = String(stderr).trim().split('\n').slice(-3).join(' ');
        reject(notAuthenticated(`The profile's token command failed${detail ? `: ${detail}` : ''}.`));
        return;
      }
      resolve({ accessToken: token });
    });
  });
}
