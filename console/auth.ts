/**
 * Sign-in in the browser: OpenID Connect authorization code + PKCE (S256) with a
 * public client. The token lives in sessionStorage (this tab only, gone when it
 * closes), never in a cookie; the API gets it in the Authorization header only.
 */
export interface ConsoleSettings {
  issuer: string;
  clientId: string;
  redirectUri: string;
  scopes: string;
  resource?: string;
  tokenUse: 'access' | 'id';
}

export interface Session {
  token: string;
  /** Epoch seconds. */
  expiresAt: number;
  claims: Record<string, unknown>;
}

const TOKEN_KEY = 'mm.session';
const PENDING_KEY = 'mm.signin';

interface Pending {
  state: string;
  verifier: string;
  nonce: string;
  /** The hash route to come back to. */
  route: string;
}

function random(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function discover(issuer: string): Promise<{ authorization_endpoint: string; token_endpoint: string; end_session_endpoint?: string }> {
  const response = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, { credentials: 'omit' });
  if (!response.ok) throw new Error(`The issuer's discovery document could not be read (${response.status}).`);
  return response.json();
}

export function decodeClaims(token: string): Record<string, unknown> {
  try {
    const part = token.split('.')[1] ?? '';
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

export function currentSession(): Session | undefined {
  const raw = sessionStorage.getItem(TOKEN_KEY);
  if (!raw) return undefined;
  try {
    const session = JSON.parse(raw) as Session;
    if (session.expiresAt * 1000 > Date.now() + 5_000) return session;
  } catch {
    /* fall through */
  }
  sessionStorage.removeItem(TOKEN_KEY);
  return undefined;
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(PENDING_KEY);
}

/** Sends the browser to the issuer's sign-in page. */
export async function signIn(settings: ConsoleSettings, route: string): Promise<void> {
  const metadata = await discover(settings.issuer);
  const pending: Pending = { state: random(), verifier: random(48), nonce: random(), route };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(pending.verifier))));
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: settings.redirectUri,
    scope: settings.scopes,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(settings.resource ? { resource: settings.resource } : {}),
  }).toString();
  location.assign(url.toString());
}

/**
 * Back from the issuer: takes `code` and `state` out of the address bar at once
 * (so that they are in no history entry, bookmark or Referer), checks the state,
 * and trades the code for a token.
 * @returns the route to show, or undefined when this is not a sign-in return
 */
export async function completeSignIn(settings: ConsoleSettings): Promise<string | undefined> {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const state = params.get('state');
  const error = params.get('error');
  if (!code && !error) return undefined;
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? 'null') as Pending | null;
  sessionStorage.removeItem(PENDING_KEY);
  if (error) throw new Error(`Sign-in failed: ${error}${params.get('error_description') ? ` (${params.get('error_description')})` : ''}`);
  if (!pending || pending.state !== state) throw new Error('Sign-in failed: the answer does not belong to a sign-in started here. Try again.');
  const metadata = await discover(settings.issuer);
  const response = await fetch(metadata.token_endpoint, {
    method: 'POST',
    credentials: 'omit',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: code!,
      redirect_uri: settings.redirectUri,
      client_id: settings.clientId,
      code_verifier: pending.verifier,
      ...(settings.resource ? { resource: settings.resource } : {}),
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`Sign-in failed: ${body.error ?? response.status}${body.error_description ? ` (${body.error_description})` : ''}`);
  const token: string | undefined = settings.tokenUse === 'id' ? body.id_token : body.access_token;
  if (!token || token.split('.').length !== 3) throw new Error(`Sign-in failed: the issuer gave no ${settings.tokenUse} token in JWT form.`);
  if (body.id_token) {
    const idClaims = decodeClaims(body.id_token);
    if (idClaims.nonce !== pending.nonce) throw new Error('Sign-in failed: the ID token does not answer this sign-in (nonce).');
  }
  const claims = decodeClaims(token);
  const expiresAt = typeof claims.exp === 'number' ? claims.exp : Math.floor(Date.now() / 1000) + Number(body.expires_in ?? 300);
  const session: Session = { token, expiresAt, claims };
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
  return pending.route;
}
