/**
 * A development OIDC token issuer for the local stack (CONTRACT §6, §8): one ES256
 * key pair, generated on first use and kept in the service's
 * `.middle-management/dev-issuer.json`, a JWKS endpoint on 127.0.0.1, and
 * {@link signDevToken} for `middle-management dev` and `middle-management dev token`.
 *
 * The stack trusts this issuer exactly as production trusts a real one: through
 * MANAGE_JWT_ISSUER / MANAGE_JWT_AUDIENCE and the JWKS it serves. Never deploy it.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

export const DEV_AUDIENCE = 'middle-management-local';
export const DEFAULT_ISSUER_PORT = 3005;
const ALG = 'ES256';
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

async function readState(file: string): Promise<DevIssuerState | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const state = JSON.parse(text) as DevIssuerState;
  if (state.alg !== ALG || !state.privateJwk?.d || !state.publicJwk || !state.kid || !Number.isInteger(state.port)) {
    throw new Error(`${file} is not a dev issuer state file; delete it to generate a new key`);
  }
  return state;
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

  let state = await readState(file);
  if (!state) {
    const port = requestedPort ?? DEFAULT_ISSUER_PORT;
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
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
      await writeState(file, created, true);
      return created;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      state = (await readState(file))!;
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
  if (saved?.port !== state.port || saved.kid !== state.kid) await writeState(file, state, false);
}

export interface DevTokenOptions {
  sub?: string;
  groups?: string[];
  username?: string;
  /** Seconds, or a jose time span such as `'2h'`; default one hour. */
  expiresIn?: number | string;
  /** Defaults to {@link loadDevIssuer}(). */
  state?: DevIssuerState;
}

export async function signDevToken(options: DevTokenOptions = {}): Promise<string> {
  const state = options.state ?? (await loadDevIssuer());
  const sub = options.sub ?? 'developer';
  const key = await importJWK(state.privateJwk, ALG);
  const expiresIn = options.expiresIn ?? 3600;
  return new SignJWT({ groups: options.groups ?? [], username: options.username ?? sub })
    .setProtectedHeader({ alg: ALG, kid: state.kid, typ: 'JWT' })
    .setIssuer(state.issuer)
    .setAudience(state.audience)
    .setSubject(sub)
    .setIssuedAt()
    .setJti(randomUUID())
    .setExpirationTime(typeof expiresIn === 'number' ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn)
    .sign(key);
}

export interface RunningDevIssuer {
  state: DevIssuerState;
  server: Server;
  close(): Promise<void>;
}

/** Serve the JWKS and the OIDC discovery document on 127.0.0.1:`state.port`. */
export async function startDevIssuer(state: DevIssuerState): Promise<RunningDevIssuer> {
  const jwks = JSON.stringify({ keys: [state.publicJwk] });
  const discovery = JSON.stringify({
    issuer: state.issuer,
    jwks_uri: `${state.issuer}/.well-known/jwks.json`,
    id_token_signing_alg_values_supported: [ALG],
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'groups', 'username'],
  });

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', state.issuer).pathname;
    const body = path === '/.well-known/jwks.json' ? jwks : path === '/.well-known/openid-configuration' ? discovery : undefined;
    if (body === undefined) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    } else if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else {
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    }
  });

  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(state.port, HOST, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });

  return {
    state,
    server,
    close: () =>
      new Promise<void>((resolvePromise) => {
        server.closeAllConnections();
        server.close(() => resolvePromise());
      }),
  };
}
