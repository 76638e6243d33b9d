/** One invocation's settings: the global options, the profile, the API client, and how to report. */
import { ApiClient } from './api.js';
import { Authenticator } from './auth/index.js';
import { loadConfig, resolveProfile, resolveUrl, type ConfigFile, type Profile } from './config.js';
import { CliError } from './errors.js';
import { colors, err, outRaw } from './io.js';
import { formatError } from './format.js';

export interface GlobalOptions {
  profile?: string;
  url?: string;
  token?: string;
  json?: boolean;
  clientId?: string;
  /** `mm login --new-password-from-env VAR`: a new password Cognito demands, from that variable. */
  newPasswordFromEnv?: string;
}

export class Session {
  readonly config: ConfigFile;
  readonly profileName: string | undefined;
  readonly profile: Profile;
  private authenticator?: Authenticator;
  private client?: ApiClient;

  constructor(
    readonly options: GlobalOptions,
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.config = loadConfig(env);
    const resolved = resolveProfile(this.config, options.profile, env);
    this.profileName = resolved.name;
    this.profile = resolved.profile;
  }

  /** `--json`, or a profile whose default output is JSON. */
  get json(): boolean {
    return this.options.json === true || (this.options.json === undefined && this.profile.output === 'json');
  }

  get auth(): Authenticator {
    return (this.authenticator ??= new Authenticator({
      ...(this.profileName ? { profileName: this.profileName } : {}),
      profile: this.profile,
      flags: {
        ...(this.options.token !== undefined ? { token: this.options.token } : {}),
        ...(this.options.clientId !== undefined ? { clientId: this.options.clientId } : {}),
        ...(this.options.newPasswordFromEnv !== undefined ? { newPasswordFromEnv: this.options.newPasswordFromEnv } : {}),
      },
      env: this.env,
    }));
  }

  /** The API client; the URL is checked before any sign-in happens. */
  get api(): ApiClient {
    if (!this.client) {
      const url = resolveUrl(this.options.url, this.env, this.profile);
      this.client = new ApiClient(url, this.auth);
    }
    return this.client;
  }

  /** Reports a failure: `--json` prints the error body on stdout, people get a message on stderr. */
  report(error: CliError): void {
    if (this.json) outRaw(error.jsonText());
    else err(formatError(error, colors.err));
  }
}
