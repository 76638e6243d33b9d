/**
 * Cognito user-pool sign-in through the Cognito IdP JSON API over `fetch`
 * (no AWS SDK): `InitiateAuth` with `USER_PASSWORD_AUTH`, the MFA challenges
 * (`SOFTWARE_TOKEN_MFA`, `SMS_MFA`, `EMAIL_OTP`, `SELECT_MFA_TYPE`) and
 * `NEW_PASSWORD_REQUIRED` through `RespondToAuthChallenge`, and
 * `REFRESH_TOKEN_AUTH`. The app client must allow `ALLOW_USER_PASSWORD_AUTH`
 * and `ALLOW_REFRESH_TOKEN_AUTH`. An app client with a secret gets
 * `SECRET_HASH` = Base64(HMAC-SHA256(secret, username + clientId)) on every
 * call (for a refresh, the username is the user's Cognito username, which in
 * pools signing in by e-mail is the `sub`).
 */
import { createHmac } from 'node:crypto';
import { CliError, Exit, notAuthenticated } from '../errors.js';
import { checkUrl } from '../config.js';
import { registerSecret } from '../io.js';
import { networkError, type TokenSet } from './oauth.js';

export interface CognitoSettings {
  region: string;
  clientId: string;
  /** The profile's endpoint; the AWS SDK's endpoint variables win over it (see {@link cognitoEndpoint}). */
  endpoint?: string;
  /** The app client's secret, when it has one. */
  clientSecret?: string;
  /** The environment for the endpoint variables (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Cognito's SECRET_HASH: Base64(HMAC_SHA256(key = client secret, message = username + client id)). */
export function secretHash(clientSecret: string, username: string, clientId: string): string {
  return createHmac('sha256', clientSecret).update(username + clientId).digest('base64');
}

export interface CognitoPrompts {
  /** A one-time code for the named challenge (`SOFTWARE_TOKEN_MFA`, `SMS_MFA`, `EMAIL_OTP`). */
  code(challenge: string, hint: string): Promise<string>;
  /** A new password, when the pool demands one. */
  newPassword(): Promise<string>;
  /** Which MFA to use, when several are set up. */
  selectMfa(options: string[]): Promise<string>;
}

const CHALLENGE_CODE_FIELD: Record<string, string> = {
  SOFTWARE_TOKEN_MFA: 'SOFTWARE_TOKEN_MFA_CODE',
  SMS_MFA: 'SMS_MFA_CODE',
  EMAIL_OTP: 'EMAIL_OTP_CODE',
};

/**
 * Where the Cognito IdP API is, in the AWS SDK's order: the service's variable
 * `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, then `AWS_ENDPOINT_URL`, then the
 * profile's `endpoint` (as the SDK reads its shared config file after the
 * environment), else the regional endpoint. `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`
 * ignores all three, as in the SDK.
 */
export function configuredEndpoint(settings: CognitoSettings): { url: string; from: string } | undefined {
  const env = settings.env ?? process.env;
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true') return undefined;
  if (env.AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER) {
    return { url: env.AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER, from: 'AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER' };
  }
  if (env.AWS_ENDPOINT_URL) return { url: env.AWS_ENDPOINT_URL, from: 'AWS_ENDPOINT_URL' };
  if (settings.endpoint) return { url: settings.endpoint, from: 'profile' };
  return undefined;
}

export function cognitoEndpoint(settings: CognitoSettings): string {
  const configured = configuredEndpoint(settings);
  if (configured) {
    const what = configured.from === 'profile' ? 'Cognito endpoint' : `Cognito endpoint (${configured.from})`;
    return `${checkUrl(configured.url, what, settings.env ?? process.env)}/`;
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(settings.region)) {
    throw new CliError(Exit.Usage, 'UsageError', `"${settings.region}" is not an AWS region (e.g. eu-west-1).`);
  }
  return `https://cognito-idp.${settings.region}.amazonaws.com/`;
}

async function call(settings: CognitoSettings, action: string, payload: Record<string, unknown>): Promise<Record<string, any>> {
  const url = cognitoEndpoint(settings);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `AWSCognitoIdentityProviderService.${action}`,
      },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw networkError(url, error);
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, any>;
  if (response.ok) return body;
  const type = String(body.__type ?? body.code ?? `HTTP ${response.status}`).split('#').pop()!;
  const message = typeof body.message === 'string' ? body.message : typeof body.Message === 'string' ? body.Message : type;
  if (response.status >= 500 || type === 'TooManyRequestsException' || type === 'InternalErrorException') {
    throw new CliError(Exit.Service, 'ServiceError', `Cognito could not sign you in now (${type}): ${message}`);
  }
  if (type === 'InvalidParameterException' && /USER_PASSWORD_AUTH/.test(message)) {
    throw new CliError(Exit.Usage, 'UsageError', `The Cognito app client does not allow ALLOW_USER_PASSWORD_AUTH: ${message}`);
  }
  if (/secret hash/i.test(message)) {
    const hint = settings.clientSecret
      ? ' The client secret given (MM_CLIENT_SECRET or mm configure --client-secret) does not match the app client.'
      : ' This app client has a client secret: set MM_CLIENT_SECRET or store it with mm configure --client-secret.';
    throw notAuthenticated(`Cognito sign-in failed (${type}): ${message}.${hint}`);
  }
  throw notAuthenticated(`Cognito sign-in failed (${type}): ${message}`);
}

function tokensOf(result: Record<string, any>, previousRefresh?: string): TokenSet {
  const r = result.AuthenticationResult as Record<string, any> | undefined;
  if (!r || typeof r.AccessToken !== 'string') throw notAuthenticated('Cognito answered without tokens.');
  const set: TokenSet = { accessToken: r.AccessToken };
  if (typeof r.TokenType === 'string') set.tokenType = r.TokenType;
  if (typeof r.IdToken === 'string') set.idToken = r.IdToken;
  const refresh = typeof r.RefreshToken === 'string' ? r.RefreshToken : previousRefresh;
  if (refresh) set.refreshToken = refresh;
  if (typeof r.ExpiresIn === 'number') set.expiresIn = r.ExpiresIn;
  registerSecret(set.accessToken);
  registerSecret(set.idToken);
  registerSecret(set.refreshToken);
  return set;
}

export async function cognitoSignIn(
  settings: CognitoSettings,
  credentials: { username: string; password: string },
  prompts: CognitoPrompts,
): Promise<TokenSet> {
  registerSecret(credentials.password);
  registerSecret(settings.clientSecret);
  const hashFor = (username: string): Record<string, string> =>
    settings.clientSecret ? { SECRET_HASH: secretHash(settings.clientSecret, username, settings.clientId) } : {};
  let answer = await call(settings, 'InitiateAuth', {
    AuthFlow: 'USER_PASSWORD_AUTH',
    ClientId: settings.clientId,
    AuthParameters: { USERNAME: credentials.username, PASSWORD: credentials.password, ...hashFor(credentials.username) },
  });
  // A few rounds at most. An answer with tokens is final whatever else it says (cognito-local adds ChallengeName PASSWORD_VERIFIER).
  for (let round = 0; round < 5 && answer.ChallengeName && !answer.AuthenticationResult; round++) {
    const challenge = String(answer.ChallengeName);
    const parameters = (answer.ChallengeParameters ?? {}) as Record<string, string>;
    const username = parameters.USER_ID_FOR_SRP ?? parameters.USERNAME ?? credentials.username;
    const responses: Record<string, string> = { USERNAME: username, ...hashFor(username) };
    if (challenge in CHALLENGE_CODE_FIELD) {
      const hint = parameters.CODE_DELIVERY_DESTINATION ? ` sent to ${parameters.CODE_DELIVERY_DESTINATION}` : '';
      responses[CHALLENGE_CODE_FIELD[challenge]!] = (await prompts.code(challenge, hint)).trim();
    } else if (challenge === 'SELECT_MFA_TYPE') {
      let options: string[] = [];
      try {
        options = JSON.parse(parameters.MFAS_CAN_CHOOSE ?? '[]') as string[];
      } catch {
        options = ['SOFTWARE_TOKEN_MFA', 'SMS_MFA'];
      }
      responses.ANSWER = await prompts.selectMfa(options);
    } else if (challenge === 'NEW_PASSWORD_REQUIRED') {
      let required: string[] = [];
      try {
        required = (JSON.parse(parameters.requiredAttributes ?? '[]') as string[]).map((a) => a.replace(/^userAttributes\./, ''));
      } catch {
        required = [];
      }
      if (required.length) {
        throw notAuthenticated(
          `Cognito requires a new password and these attributes on first sign-in: ${required.join(', ')}; this CLI cannot set attributes: sign in once in the hosted UI (or have an administrator set them).`,
        );
      }
      const password = await prompts.newPassword();
      registerSecret(password);
      responses.NEW_PASSWORD = password;
    } else {
      throw notAuthenticated(`Cognito asks for a challenge this CLI cannot answer (${challenge}); sign in once in the hosted UI first.`);
    }
    answer = await call(settings, 'RespondToAuthChallenge', {
      ClientId: settings.clientId,
      ChallengeName: challenge,
      Session: answer.Session,
      ChallengeResponses: responses,
    });
  }
  return tokensOf(answer);
}

/** `username`: the user's Cognito username (the `username` claim of the access token; the `sub` in e-mail pools), needed only for SECRET_HASH. */
export async function cognitoRefresh(settings: CognitoSettings, refreshToken: string, username?: string): Promise<TokenSet> {
  registerSecret(settings.clientSecret);
  if (settings.clientSecret && !username) {
    throw notAuthenticated('Cannot refresh: the app client has a secret and the cached token does not name the user.');
  }
  const answer = await call(settings, 'InitiateAuth', {
    AuthFlow: 'REFRESH_TOKEN_AUTH',
    ClientId: settings.clientId,
    AuthParameters: {
      REFRESH_TOKEN: refreshToken,
      ...(settings.clientSecret && username ? { SECRET_HASH: secretHash(settings.clientSecret, username, settings.clientId) } : {}),
    },
  });
  return tokensOf(answer, refreshToken);
}
