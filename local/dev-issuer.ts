/**
 * The development token issuer of the local stack (CONTRACT §6, §8): the
 * OpenID provider of ./oidc-issuer.ts (oidc-provider: a real sign-in for the web
 * console, the device grant for `mm`, client credentials), with its one RS256
 * key generated on first use and kept in the service's
 * `.middle-management/dev-issuer.json`, so that tokens survive restarts, and
 * {@link signDevToken} for `middle-management dev` and `middle-management dev token`.
 *
 * The stack trusts this issuer exactly as production trusts a real one: through
 * MANAGE_JWT_ISSUER / MANAGE_JWT_AUDIENCE and the JWKS it serves. Never deploy it.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { OIDC_DEV_AUDIENCE, signIssuerToken, startOidcIssuer, type OidcIssuerState } from './oidc-issuer.js';

/** The API's audience: a resource indicator (RFC 8707) of the provider, so an absolute URI. */
export const DEV_AUDIENCE = OIDC_DEV_AUDIENCE;
export { CONSOLE_CLIENT_ID, DEV_ACCOUNTS } from './oidc-issuer.js';
export const DEFAULT_ISSUER_PORT = 3005;
const ALG = 'RS256';
const HOST = '127.0.0.1';

/** Where the local stack keeps its state, in the service's folder (never in node_modules). */
export const STATE_DIR = '.middle-management';

/**
 * The issuer's key file: `<service>/.middle-management/dev-issuer.json`, or
 * `DEV_ISSUER_FILE` (e.g. so a test's stack leaves the developer's key alone).
 */
export function devIssuerFile(env: NodeJS.ProcessEnv = process.env, serviceDir: string = process.cwd()): string {
  return env.DEV_ISSUER_FILE ? resolve(env.DEV_ISSUER_FILE) : resolve(serviceDir, STATE_DIR, 'dev-issuer.json');
}

export interface DevIssuerState {
  /** The `iss` of every token, and the base of the JWKS URL. */
  issuer: string;
  audience: string;
  port: number;
  kid: string;
  alg: typeof ALG;
  privateJwk: JWK;
  publicJwk: JWK;
}

export function issuerUrl(port: number): string {
  // 127.0.0.1, not localhost: "localhost" may resolve to ::1, where nothing listens.
  return `http://${HOST}:${port}`;
}

function parsePort(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`ISSUER_PORT must be a TCP port number, not "${raw}"`);
  }
  return port;
}

async function readState(file: string): Promise<DevIssuerState | { legacyPort: number } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const state = JSON.parse(text) as Partial<Omit<DevIssuerState, 'alg'>> & { alg?: string };
  // Before the OpenID provider: one ES256 key and another audience. Its tokens cannot pass any more: a new key, same port.
  if (state.alg === 'ES256' && Number.isInteger(state.port) && state.privateJwk?.d) return { legacyPort: state.port! };
  if (state.alg !== ALG || !state.privateJwk?.d || !state.publicJwk || !state.kid || !Number.isInteger(state.port)) {
    throw new Error(`${file} is not a dev issuer state file; delete it to generate a new key`);
  }
  return state as DevIssuerState;
}

async function writeState(file: string, state: DevIssuerState, exclusive: boolean): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  try {
    // link() fails if the file exists, so two first runs racing agree on one key.
    if (exclusive) await link(temp, file);
    else await rename(temp, file);
  } finally {
    if (exclusive) await unlink(temp).catch(() => {});
  }
}

/**
 * The issuer's key and settings, created on first use. The port is `ISSUER_PORT`
 * when set, otherwise the one in the file (default 3005); with `persistPort`
 * a new port is written back at once (see also {@link rememberDevIssuer}).
 */
export async function loadDevIssuer(
  options: { env?: NodeJS.ProcessEnv; serviceDir?: string; persistPort?: boolean } = {},
): Promise<DevIssuerState> {
  const env = options.env ?? process.env;
  const file = devIssuerFile(env, options.serviceDir);
  const requestedPort = parsePort(env.ISSUER_PORT);

  let saved = await readState(file);
  const legacyPort = saved && 'legacyPort' in saved ? saved.legacyPort : undefined;
  let state = saved && !('legacyPort' in saved) ? saved : undefined;
  if (!state) {
    const port = requestedPort ?? legacyPort ?? DEFAULT_ISSUER_PORT;
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true, modulusLength: 2048 });
    const kid = randomUUID();
    const created: DevIssuerState = {
      issuer: issuerUrl(port),
      audience: DEV_AUDIENCE,
      port,
      kid,
      alg: ALG,
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALG },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' },
    };
    try {
      // A legacy file is replaced; a new one is created once, whoever comes first.
      await writeState(file, created, legacyPort === undefined);
      return created;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      saved = await readState(file);
      if (!saved || 'legacyPort' in saved) throw error;
      state = saved;
    }
  }

  if (requestedPort !== undefined && requestedPort !== state.port) {
    state = { ...state, port: requestedPort, issuer: issuerUrl(requestedPort) };
    if (options.persistPort) await writeState(file, state, false);
  }
  return state;
}

/**
 * Writes the issuer's port back, so that a later `dev token` signs for the
 * stack now running. The stack calls it once it is up: a start that fails
 * (a port in use) must not redirect the tokens of a stack that runs.
 */
export async function rememberDevIssuer(
  state: DevIssuerState,
  env: NodeJS.ProcessEnv = process.env,
  serviceDir: string = process.cwd(),
): Promise<void> {
  const file = devIssuerFile(env, serviceDir);
  const saved = await readState(file);
  if (!saved || 'legacyPort' in saved || saved.port !== state.port || saved.kid !== state.kid) await writeState(file, state, false);
}

export interface DevTokenOptions {
  sub?: string;
  /** The `groups` claim; default none. */
  groups?: string[];
  username?: string;
  /** Seconds; default one hour. */
  expiresIn?: number;
  /** Defaults to {@link loadDevIssuer}(). */
  state?: DevIssuerState;
}

/** The provider's view of the state: its issuer, audience and private key. */
export function providerState(state: DevIssuerState): OidcIssuerState {
  return { issuer: state.issuer, audience: state.audience, kid: state.kid, privateJwk: { use: 'sig', ...state.privateJwk } };
}

/** A token for the API as the provider issues them (an RS256 `at+jwt`), signed with its key, without a sign-in. */
export async function signDevToken(options: DevTokenOptions = {}): Promise<string> {
  const state = options.state ?? (await loadDevIssuer());
  return signIssuerToken(providerState(state), {
    sub: options.sub ?? 'developer',
    groups: options.groups ?? [],
    ...(options.username !== undefined ? { username: options.username } : {}),
    expiresIn: options.expiresIn ?? 3600,
  });
}

export interface RunningDevIssuer {
  state: DevIssuerState;
  server: Server;
  close(): Promise<void>;
}

/**
 * Serves the OpenID provider on 127.0.0.1:`state.port`: discovery, the JWKS
 * (`/.well-known/jwks.json`), sign-in for the console's client `mm-console`
 * (redirected back to `consoleRedirectUris`), the device grant for `mm-cli`.
 */
export async function startDevIssuer(state: DevIssuerState, options: { consoleRedirectUris?: string[] } = {}): Promise<RunningDevIssuer> {
  const running = await startOidcIssuer({ state: providerState(state), ...(options.consoleRedirectUris ? { consoleRedirectUris: options.consoleRedirectUris } : {}) });
  return { state, server: running.server, close: () => running.close() };
}
