/**
 * What a token is, for messages: its shape (JWT or opaque), and for a JWT the
 * claims that decide whether middle-management can accept it — never the
 * token, its signature or a secret. The server accepts only JWTs signed by an
 * issuer it trusts, with `exp`, and with an audience (`aud`, or `client_id`
 * for Cognito access tokens); a token without these can never pass, so `mm`
 * says so at sign-in instead of sending it and getting a bare 401.
 */
import type { AuthConfig } from '../config.js';

export interface TokenShape {
  kind: 'jwt' | 'opaque';
  length: number;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
}

function decodePart(part: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function inspectToken(token: string): TokenShape {
  const parts = token.split('.');
  if (parts.length === 3 && parts.every((p) => /^[A-Za-z0-9_-]*$/.test(p))) {
    const header = decodePart(parts[0]!);
    const claims = decodePart(parts[1]!);
    if (header && claims && typeof header.alg === 'string') return { kind: 'jwt', length: token.length, header, claims };
  }
  return { kind: 'opaque', length: token.length };
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string' && value) return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(', ');
  return undefined;
}

/** One line about a token: "a JWT (typ at+jwt) from https://… for audience …, token_use access, expires …". No secrets. */
export function describeToken(token: string, extra: { tokenType?: string } = {}): string {
  const shape = inspectToken(token);
  const type = extra.tokenType ? `token_type ${extra.tokenType}, ` : '';
  if (shape.kind === 'opaque') {
    return `an opaque token (${type}${shape.length} characters, not a JWT)`;
  }
  const c = shape.claims!;
  const parts: string[] = [];
  const typ = text(shape.header!.typ);
  parts.push(`a JWT (${type}${typ ? `typ ${typ}, ` : ''}alg ${String(shape.header!.alg)})`);
  const iss = text(c.iss);
  parts.push(iss ? `from ${iss}` : 'without iss');
  const aud = text(c.aud);
  const clientId = text(c.client_id);
  if (aud) parts.push(`for audience ${aud}`);
  else if (clientId) parts.push(`for client_id ${clientId} (no aud)`);
  else parts.push('without aud or client_id');
  const use = text(c.token_use);
  if (use) parts.push(`token_use ${use}`);
  if (typeof c.exp === 'number') {
    const expired = c.exp * 1000 <= Date.now();
    parts.push(`${expired ? 'expired' : 'expires'} ${new Date(c.exp * 1000).toISOString()}`);
  } else parts.push('without exp');
  return parts.join(', ');
}

/** Which settings make the issuer return a token the server can use, per sign-in method. */
export function settingHint(auth: AuthConfig | undefined, profileName: string | undefined): string {
  const configure = `mm configure${profileName ? ` --profile ${profileName}` : ''}`;
  switch (auth?.method) {
    case 'device':
    case 'client_credentials':
      return (
        `Ask the issuer for a JWT access token for this API: ${configure} --resource <the API's resource URI> ` +
        `(RFC 8707: oidc-provider, Curity, PingFederate, Keycloak with resource indicators), or --audience <API identifier> (Auth0, Okta)` +
        (auth.method === 'device' ? `, or --token-use id to send the ID token (if the server is set to accept ID tokens).` : '.')
      );
    case 'cognito':
      return `Match the server: ${configure} --token-use access (MANAGE_COGNITO_TOKEN_USE=access, the default) or --token-use id.`;
    case 'command':
      return `The profile's token command must print a JWT the server trusts: ${configure} --token-command '<command>'.`;
    default:
      return 'Pass a JWT issued by an issuer the server trusts (--token or MM_TOKEN).';
  }
}

/** Why the server can never accept this token, or undefined when it might. */
export function unusableReason(token: string): string | undefined {
  const shape = inspectToken(token);
  if (shape.kind === 'opaque') return 'it is not a JWT; middle-management accepts only JWTs';
  const c = shape.claims!;
  if (typeof c.exp !== 'number') return 'it has no exp claim; middle-management refuses tokens that never expire';
  if (text(c.aud) === undefined && text(c.client_id) === undefined) {
    return 'it has neither aud nor client_id; middle-management checks the audience';
  }
  return undefined;
}
