/**
 * The web console's sign-in settings (`MANAGE_CONSOLE_*`), read by loadConfig
 * (config.ts). Absent `MANAGE_CONSOLE_CLIENT_ID`, there are none and the console
 * page says it is not set up.
 */
import type { CognitoIssuerConfig, OidcIssuerConfig } from './issuers.js';
import { ConfigError, list, text, url, type Environment } from './variables.js';

/** How the web console signs in (authorization code + PKCE in the browser). */
export interface ConsoleConfig {
  /** A public app client (no secret) of the issuer (`MANAGE_CONSOLE_CLIENT_ID`). */
  clientId: string;
  /** Where the issuer sends the browser back (`MANAGE_CONSOLE_REDIRECT_URI`); default: the console's own URL. */
  redirectUri?: string;
  /** The issuer the console signs in with (`MANAGE_CONSOLE_ISSUER`); default the first trusted OIDC issuer (MANAGE_JWT_ISSUER, else MANAGE_JWT_ISSUERS[0]), else the Cognito pool. */
  issuer: string;
  /** `MANAGE_CONSOLE_SCOPES`, default `openid`. */
  scopes: string;
  /** A resource indicator (RFC 8707) sent with the sign-in (`MANAGE_CONSOLE_RESOURCE`). */
  resource?: string;
  /** Which token the console sends (`MANAGE_CONSOLE_TOKEN_USE`, `access` default, or `id`). */
  tokenUse: 'access' | 'id';
  /** Origins besides the issuer's that the page may call, e.g. a Cognito domain (`MANAGE_CONSOLE_AUTH_ORIGINS`). */
  authOrigins: string[];
}

/** The console's settings, defaulting its issuer to the first trusted one (`oidc`, else the Cognito pool). */
export function consoleConfig(env: Environment, oidc: OidcIssuerConfig | undefined, cognito: CognitoIssuerConfig | undefined): { console?: ConsoleConfig } {
  const clientId = text(env, 'MANAGE_CONSOLE_CLIENT_ID');
  if (!clientId) return {};
  const cognitoIssuer = cognito ? `https://cognito-idp.${cognito.userPoolId.split('_')[0]}.amazonaws.com/${cognito.userPoolId}` : undefined;
  const issuer = text(env, 'MANAGE_CONSOLE_ISSUER') ?? oidc?.issuer ?? cognitoIssuer!;
  url(issuer, 'MANAGE_CONSOLE_ISSUER');
  const redirectUri = text(env, 'MANAGE_CONSOLE_REDIRECT_URI');
  if (redirectUri) url(redirectUri, 'MANAGE_CONSOLE_REDIRECT_URI');
  const resource = text(env, 'MANAGE_CONSOLE_RESOURCE');
  const tokenUse = text(env, 'MANAGE_CONSOLE_TOKEN_USE') ?? 'access';
  if (tokenUse !== 'access' && tokenUse !== 'id') throw new ConfigError('MANAGE_CONSOLE_TOKEN_USE', `must be "access" or "id", not "${tokenUse}"`);
  const authOrigins = list(env, 'MANAGE_CONSOLE_AUTH_ORIGINS').map((origin) => url(origin, 'MANAGE_CONSOLE_AUTH_ORIGINS').origin);
  return {
    console: {
      clientId,
      issuer,
      scopes: text(env, 'MANAGE_CONSOLE_SCOPES') ?? 'openid',
      tokenUse,
      authOrigins,
      ...(redirectUri ? { redirectUri } : {}),
      ...(resource ? { resource } : {}),
    },
  };
}
