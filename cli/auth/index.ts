/**
 * Where the bearer token comes from, in order (CONTRACT §7, issue 3):
 * `--token`, `$MM_TOKEN`, the profile's cached token while it is fresh, that
 * cache's refresh token, and last the profile's sign-in method.
 *
 * Without a profile, `$MM_TOKEN_URL` + `$MM_CLIENT_ID` (or `--client-id`) +
 * `$MM_CLIENT_SECRET` sign in with client credentials: CI needs no config file.
 *
 * A token the issuer returns that the server can never accept (opaque, no
 * `exp`, no audience) is refused at sign-in with what it was and which
 * setting to change. A token the server refuses (401) is renewed only without
 * asking anyone: by the cached refresh token, or by a new client-credentials or
 * token-command sign-in; never by a password prompt or a device sign-in.
 */
import { exec } from 'node:child_process';
import type { AuthConfig, Profile } from '../config.js';
import { CliError, Exit, notAuthenticated } from '../errors.js';
import { errLine, isInteractive, registerSecret, colors } from '../io.js';
import { askPassword, askSelect, askText, startProgress } from '../ui.js';
import { clearCache, cognitoUsernameOf, expiryOf, fingerprint, isFresh, readCache, subjectOf, writeCache, type CachedToken } from './cache.js';
import { clientCredentials, deviceGrant, refreshGrant, type ClientAuth, type TokenSet } from './oauth.js';
import { cognitoRefresh, cognitoSignIn, configuredEndpoint, type CognitoSettings } from './cognito.js';
import { describeToken, settingHint, unusableReason } from './inspect.js';
import { clientSecret } from './secrets.js';

export type TokenSource = 'flag' | 'env' | 'cache' | 'refresh' | 'signin';

export interface AuthOptions {
  profileName?: string;
  profile: Profile;
  flags: { token?: string; clientId?: string; newPasswordFromEnv?: string };
  env: NodeJS.ProcessEnv;
}

export interface SignedIn {
  token: string;
  source: TokenSource;
  expiresAt?: number;
  /** Who the token stands for, to greet (from the token, else the ID token). */
  subject?: string;
}

type CognitoAuth = AuthConfig & { method: 'cognito' };
type DeviceAuth = AuthConfig & { method: 'device' };
type ClientCredentialsAuth = AuthConfig & { method: 'client_credentials' };

export class Authenticator {
  private current?: SignedIn;
  private readonly auth: AuthConfig | undefined;
  /** What happened after the server refused a token, for the message. */
  private renewal?: { tried: 'refresh' | 'signin'; failed?: string };

  constructor(private readonly options: AuthOptions) {
    registerSecret(options.flags.token);
    registerSecret(options.env.MM_TOKEN);
    registerSecret(options.env.MM_CLIENT_SECRET);
    registerSecret(options.env.MM_PASSWORD);
    registerSecret(options.env.MM_NEW_PASSWORD);
    if (options.flags.newPasswordFromEnv) registerSecret(options.env[options.flags.newPasswordFromEnv]);
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
   * After the server refused the token (401), once: a cached token is renewed
   * by its refresh token; a client-credentials or token-command profile signs
   * in again (nobody is asked anything). A Cognito or device profile never
   * starts a new password or device sign-in here: a token the server refuses
   * is not one a new sign-in is likely to fix, and a 10-minute device prompt in
   * the middle of a script helps nobody. A token the caller gave (--token,
   * MM_TOKEN) is never replaced. The cache keeps its refresh token.
   */
  async renewAfterRejection(): Promise<string | undefined> {
    const source = this.current?.source;
    if (source !== 'cache' && source !== 'refresh' && source !== 'signin') return undefined;
    const auth = this.auth;
    const entry = this.cached();
    if (source === 'cache' && entry?.refreshToken) {
      this.renewal = { tried: 'refresh' };
      try {
        const tokens = await this.refresh(entry);
        if (tokens) {
          this.current = this.store(tokens, 'refresh', entry.tokenEndpoint, entry);
          return this.current.token;
        }
      } catch (error) {
        if (!(error instanceof CliError) || error.exitCode !== Exit.NotAuthenticated) throw error;
        this.renewal.failed = error.message;
      }
    }
    if (source !== 'signin' && (auth?.method === 'client_credentials' || auth?.method === 'command')) {
      this.renewal = { tried: 'signin' };
      if (this.options.profileName) clearCache(this.options.profileName, this.options.env);
      this.current = await this.signIn();
      return this.current.token;
    }
    return undefined;
  }

  /** Why the server's 401 happened, as far as the client can tell, and what to change: appended to the server's message. */
  explainRejection(): string {
    const current = this.current;
    if (!current) return 'Sign in (mm login) or check --token / MM_TOKEN.';
    const shape = describeToken(current.token);
    const profile = this.options.profileName;
    const expired = /\bexpired \d/.test(shape);
    const hint = settingHint(this.auth, profile);
    if (current.source === 'flag' || current.source === 'env') {
      const where = current.source === 'flag' ? '--token' : 'MM_TOKEN';
      return `The token from ${where} is ${shape}. ${expired ? 'It has expired: get a new one.' : 'Check that it comes from an issuer this stage trusts, with the audience it expects (and --url).'}`;
    }
    const of = profile ? `profile ${profile}` : 'this sign-in';
    const parts = [`The server refused the token of ${of}: ${shape}.`];
    if (this.renewal?.tried === 'refresh') {
      parts.push(this.renewal.failed ? `Renewing it with the refresh token failed (${this.renewal.failed}).` : 'A token renewed with the refresh token was refused too.');
    } else if (this.renewal?.tried === 'signin') {
      parts.push('A new token from a fresh sign-in was refused too.');
    }
    const fresh = current.source === 'signin' || (this.renewal !== undefined && this.renewal.failed === undefined);
    if (expired) parts.push(`It has expired: mm login${profile ? ` --profile ${profile}` : ''}.`);
    else if (fresh) {
      parts.push(`The token is new, so the server does not trust this issuer, audience or token type (or this is another stage: check --url). ${hint}`);
    } else {
      if (this.auth?.method === 'cognito' || this.auth?.method === 'device') {
        parts.push(`mm does not start a new sign-in for a refused token; if the server's keys or settings changed, run mm login${profile ? ` --profile ${profile}` : ''}.`);
      }
      parts.push(`If a new token is refused too, the server does not trust this issuer, audience or token type: ${hint}`);
    }
    return parts.join(' ');
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

  /** The sign-in settings; a Cognito endpoint taken from the environment counts too (tokens of an emulator are not the pool's). */
  private fingerprint(): string {
    const auth = this.auth;
    if (auth?.method === 'cognito') {
      const endpoint = configuredEndpoint(this.cognitoSettings(auth));
      if (endpoint && endpoint.from !== 'profile') return fingerprint(auth, { endpoint: endpoint.url });
    }
    return fingerprint(auth);
  }

  private secret(): string | undefined {
    return clientSecret(this.options.profileName, this.options.env);
  }

  private cognitoSettings(auth: CognitoAuth): CognitoSettings {
    const secret = this.secret();
    return {
      region: auth.region,
      clientId: auth.clientId,
      ...(auth.endpoint ? { endpoint: auth.endpoint } : {}),
      ...(secret ? { clientSecret: secret } : {}),
      env: this.options.env,
    };
  }

  private deviceClient(auth: DeviceAuth): ClientAuth {
    const secret = this.secret();
    return secret ? { id: auth.clientId, secret, auth: auth.clientAuth ?? 'basic' } : { id: auth.clientId, auth: 'post' };
  }

  private async refreshOrSignIn(): Promise<SignedIn> {
    const stale = this.cached();
    if (stale?.refreshToken) {
      try {
        const tokens = await this.refresh(stale);
        if (tokens) return this.store(tokens, 'refresh', stale.tokenEndpoint, stale);
      } catch (error) {
        // A refresh token that no longer works means signing in again; a network failure is reported as such.
        if (!(error instanceof CliError) || error.exitCode !== Exit.NotAuthenticated || error.code === 'UnusableToken') throw error;
      }
    }
    return this.signIn();
  }

  private async refresh(stale: CachedToken): Promise<TokenSet | undefined> {
    const auth = this.auth;
    const refreshToken = stale.refreshToken!;
    switch (auth?.method) {
      case 'cognito':
        return cognitoRefresh(this.cognitoSettings(auth), refreshToken, stale.username ?? cognitoUsernameOf(stale.accessToken));
      case 'device':
        return stale.tokenEndpoint
          ? refreshGrant(stale.tokenEndpoint, refreshToken, this.deviceClient(auth), { ...(auth.resource ? { resource: auth.resource } : {}) })
          : undefined;
      case 'client_credentials': {
        const secret = this.secret();
        return refreshGrant(
          auth.tokenUrl,
          refreshToken,
          secret ? { id: this.clientId(auth), secret, auth: auth.clientAuth ?? 'basic' } : { id: this.clientId(auth), auth: 'post' },
          { ...(auth.resource ? { resource: auth.resource } : {}) },
        );
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
        const secret = this.secret();
        if (!secret) {
          throw notAuthenticated(
            `Client-credentials sign-in needs the client secret in MM_CLIENT_SECRET${this.options.profileName ? ` (or stored with mm configure --profile ${this.options.profileName} --client-secret -)` : ''}.`,
          );
        }
        const clientId = this.clientId(auth);
        const tokens = await clientCredentials({
          tokenUrl: auth.tokenUrl,
          clientId,
          clientSecret: secret,
          ...(auth.scope ? { scope: auth.scope } : {}),
          ...(auth.audience ? { audience: auth.audience } : {}),
          ...(auth.resource ? { resource: auth.resource } : {}),
          ...(auth.clientAuth ? { clientAuth: auth.clientAuth } : {}),
        });
        return this.store(tokens, 'signin', auth.tokenUrl);
      }
      case 'cognito':
        return this.cognitoSignIn(auth);
      case 'device': {
        let progress: ReturnType<typeof startProgress> | undefined;
        const secret = this.secret();
        try {
          const tokens = await deviceGrant({
            issuer: auth.issuer,
            clientId: auth.clientId,
            ...(secret ? { clientSecret: secret, clientAuth: auth.clientAuth ?? 'basic' } : {}),
            ...(auth.scope ? { scope: auth.scope } : {}),
            ...(auth.audience ? { audience: auth.audience } : {}),
            ...(auth.resource ? { resource: auth.resource } : {}),
            notify: (info) => {
              const c = colors.err;
              errLine(`To sign in, open ${c.bold(info.verificationUri)} and enter the code ${c.bold(c.cyan(info.userCode))}`);
              if (info.verificationUriComplete) errLine(`(or open ${info.verificationUriComplete})`);
              progress = startProgress('Waiting for you to approve the sign-in');
            },
          });
          return this.store(tokens, 'signin', tokens.tokenEndpoint);
        } finally {
          (await progress)?.stop();
        }
      }
      case 'command':
        return this.store(await runTokenCommand(auth.command), 'signin');
    }
  }

  private async cognitoSignIn(auth: CognitoAuth): Promise<SignedIn> {
    const { env, flags } = this.options;
    const username = auth.username ?? env.MM_USERNAME ?? (isInteractive() ? await askText('Cognito username', { required: true }) : undefined);
    const password = env.MM_PASSWORD ?? (isInteractive() ? await askPassword(`Password for ${username}`) : undefined);
    if (!username || !password) {
      throw notAuthenticated('Cognito sign-in needs a terminal to ask for the password (or MM_USERNAME and MM_PASSWORD).');
    }
    const progress = await startProgress('Signing in to Cognito');
    let tokens: TokenSet;
    try {
      tokens = await cognitoSignIn(this.cognitoSettings(auth), { username, password }, {
        code: async (challenge, hint) => {
          if (env.MM_MFA_CODE) return env.MM_MFA_CODE;
          progress.stop();
          if (!isInteractive()) throw notAuthenticated(`Cognito asks for an MFA code (${challenge}) and there is no terminal to ask on (or set MM_MFA_CODE).`);
          const label = challenge === 'SOFTWARE_TOKEN_MFA' ? 'Code from your authenticator app' : `Code${hint}`;
          return askText(label, { required: true, validate: (v) => (/^\d{4,10}$/.test(v) ? undefined : 'Digits only.') });
        },
        newPassword: async () => {
          if (flags.newPasswordFromEnv !== undefined) {
            const value = env[flags.newPasswordFromEnv];
            if (!value) throw notAuthenticated(`Cognito requires a new password for ${username}, and the variable ${flags.newPasswordFromEnv} (--new-password-from-env) is not set or empty.`);
            return value;
          }
          if (env.MM_NEW_PASSWORD) return env.MM_NEW_PASSWORD;
          progress.stop();
          if (!isInteractive()) {
            throw notAuthenticated(
              `Cognito requires a new password for ${username}; run mm login on a terminal, or give it without a prompt: mm login --new-password-from-env VAR (or set MM_NEW_PASSWORD).`,
            );
          }
          for (let attempt = 1; attempt <= 3; attempt++) {
            const first = await askPassword(`Cognito requires a new password for ${username}: choose one`);
            registerSecret(first);
            const second = await askPassword('Type the new password again');
            if (first === second) return first;
            errLine(colors.err.yellow(attempt < 3 ? 'The two passwords differ; try again.' : 'The two passwords differ.'));
          }
          throw notAuthenticated('The new password was not confirmed (the two entries differed three times); nothing was changed.');
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
    return this.store(tokens, 'signin', undefined, { username: cognitoUsernameOf(tokens.accessToken) ?? username });
  }

  private clientId(auth: ClientCredentialsAuth): string {
    const id = this.options.flags.clientId ?? this.options.env.MM_CLIENT_ID ?? auth.clientId;
    if (!id) throw notAuthenticated('Client-credentials sign-in needs a client id: --client-id, MM_CLIENT_ID or the profile.');
    return id;
  }

  /** The token to send: the ID token for a `tokenUse: id` profile (at sign-in and at every refresh), else the access token. */
  private choose(tokens: TokenSet): string {
    const auth = this.auth;
    if ((auth?.method === 'cognito' || auth?.method === 'device') && auth.tokenUse === 'id') {
      if (!tokens.idToken) {
        throw notAuthenticated(
          `The profile sends the ID token (--token-use id), but the issuer returned none${auth.method === 'device' ? ' (ask for the openid scope: --scope "openid offline_access")' : ''}.`,
        );
      }
      return tokens.idToken;
    }
    return tokens.accessToken;
  }

  /**
   * Checks and caches what a sign-in or refresh returned. A token the server
   * can never accept is not cached, and the error says what it was and which
   * setting to change (instead of a 401 and "sign in again").
   */
  private store(tokens: TokenSet, source: TokenSource, tokenEndpoint?: string, previous?: Pick<CachedToken, 'username'>): SignedIn {
    const token = this.choose(tokens);
    registerSecret(token);
    const reason = unusableReason(token);
    if (reason) {
      const what = this.auth?.method === 'command' ? "The profile's token command printed" : 'The issuer returned';
      throw new CliError(
        Exit.NotAuthenticated,
        'UnusableToken',
        `${what} ${describeToken(token, tokens.tokenType ? { tokenType: tokens.tokenType } : {})}, which middle-management cannot accept: ${reason}. ${settingHint(this.auth, this.options.profileName)}`,
      );
    }
    const expiresAt = expiryOf(token, tokens.expiresIn);
    const { profileName, env } = this.options;
    if (profileName && this.auth) {
      writeCache(
        profileName,
        {
          accessToken: token,
          ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
          expiresAt,
          method: this.auth.method,
          fingerprint: this.fingerprint(),
          ...(tokenEndpoint ? { tokenEndpoint } : {}),
          ...(previous?.username ? { username: previous.username } : {}),
        },
        env,
      );
    }
    const subject = subjectOf(tokens.accessToken, tokens.idToken);
    return { token, source, expiresAt, ...(subject ? { subject } : {}) };
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
      ...(env.MM_RESOURCE?.trim() ? { resource: env.MM_RESOURCE.trim().split(/\s+/) } : {}),
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
