/**
 * `middle-management dev`: the local stack of CONTRACT §6/§8 for the Serverless
 * service in the current folder.
 *
 * - an embedded DynamoDB (dynalite, in memory) on DYNAMODB_PORT (8000) unless
 *   AWS_ENDPOINT_URL_DYNAMODB is set; the audit and state tables are created
 *   wherever the endpoint is, if missing (the state table with TTL where the
 *   endpoint has TTL);
 * - the development token issuer on ISSUER_PORT (3005) unless MANAGE_JWT_ISSUER
 *   (or MANAGE_JWT_ISSUERS) is set: an OpenID provider (./oidc-issuer.ts) with a
 *   sign-in form, which the web console (`/__manage__/console`, client
 *   `mm-console`) signs in with;
 * - the service's own `serverless offline start --useInProcess` (stage dev):
 *   the API on PORT (3000), the Lambda invoke endpoint on LAMBDA_PORT (3002),
 *   which also receives the function's own worker invocations. The local values
 *   reach the manage function through the environment of that process (the
 *   plugin overlays MANAGE_*, AWS_ENDPOINT_URL_*, AWS_REGION and credentials
 *   onto the function under `serverless offline`).
 *
 * All state lives in `<service>/.middle-management/`: the issuer's key, the
 * running stack's description (stack.json), the offline watchdog.
 * Offline runs in its own process group, which is always taken down with this
 * process: on SIGINT/SIGTERM/SIGHUP, when offline dies, and (through the
 * watchdog preloaded into it) even when this process is killed outright.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import dynalite from 'dynalite';
import {
  CONSOLE_CLIENT_ID,
  DEV_ACCOUNTS,
  loadDevIssuer,
  rememberDevIssuer,
  signDevToken,
  startDevIssuer,
  STATE_DIR,
  type DevIssuerState,
} from './dev-issuer.js';
import { EXIT_WITH_PARENT_SOURCE } from './preload.js';
import { groupAlive } from './processes.js';
import { findServiceTools, printConfig, ServiceError, serviceFacts, type ServiceFacts } from './service.js';
import { ensureTables, type TableReport } from './tables.js';

export const DEFAULT_STAGE = 'dev';
export const DEFAULT_PORTS = { PORT: 3000, LAMBDA_PORT: 3002, DYNAMODB_PORT: 8000, ISSUER_PORT: 3005 } as const;
const READY_TIMEOUT_MS = 180_000;
/** After SIGTERM, how long offline may take before its group is SIGKILLed. */
const STOP_GRACE_MS = 5_000;
const TOKEN_HOURS = 12;

/** A wrong setting of the stack itself; the message starts with the variable's name. */
export class DevConfigError extends Error {
  override readonly name = 'DevConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

/** The manage function refused to start (its cold start threw): the message is its own. */
export class FunctionStartError extends Error {
  override readonly name = 'FunctionStartError';
  constructor(
    message: string,
    readonly configError: boolean,
  ) {
    super(message);
  }
}

export interface DevOptions {
  /** The service's folder (the current directory). */
  dir: string;
  env?: NodeJS.ProcessEnv;
  stage?: string;
  /** Passed to `serverless offline start` as they are (e.g. --reloadHandler). */
  offlineArgs?: string[];
  /** How to get more tokens, for the banner (`npm run token --` in this repository). */
  tokenHint?: string;
  /** Progress lines for people (stderr). */
  log?: (line: string) => void;
  /** The banner (stdout). */
  print?: (text: string) => void;
}

/** What `stack.json` records about a running stack. */
export interface StackFile {
  pid: number;
  offlineGroup: number;
  service: string;
  stage: string;
  functionName: string;
  api: string;
  invoke: string;
  tables: { audit: string; state: string };
  dynamoEndpoint: string;
  embeddedDynamo: boolean;
  /** The issuer the stack trusts; `devIssuer` when it is the dev issuer. */
  issuer: string;
  devIssuer: boolean;
  startedAt: string;
}

function isSet(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

export function portFrom(env: NodeJS.ProcessEnv, name: keyof typeof DEFAULT_PORTS): number {
  const raw = env[name];
  if (!isSet(raw)) return DEFAULT_PORTS[name];
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < 1 || value > 65535) {
    throw new DevConfigError(name, `must be a TCP port number, not "${raw}"`);
  }
  return value;
}

export function stateDir(dir: string): string {
  return join(dir, STATE_DIR);
}

function stackFile(dir: string): string {
  return join(stateDir(dir), 'stack.json');
}

export async function readStackFile(dir: string): Promise<StackFile | undefined> {
  try {
    return JSON.parse(await readFile(stackFile(dir), 'utf8')) as StackFile;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Leaves a file alone when it holds the text already (another stack of the folder may be reading it). */
async function writeIfChanged(file: string, text: string): Promise<void> {
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current !== text) await writeFile(file, text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Fails naming the variable when something listens on the port already (it would answer for us). */
async function assertPortFree(portNumber: number, variable: string): Promise<void> {
  const server = createServer();
  try {
    server.listen(portNumber, '127.0.0.1');
    await once(server, 'listening');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DevConfigError(
      variable,
      code === 'EADDRINUSE'
        ? `port ${portNumber} is in use (another local stack?); stop it or set ${variable} to a free port`
        : `cannot listen on 127.0.0.1:${portNumber}: ${(error as Error).message}`,
    );
  } finally {
    await new Promise<void>((done) => (server.listening ? server.close(() => done()) : done()));
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** SIGTERM the process group, then SIGKILL whatever is left after the grace period. */
async function stopGroup(child: ChildProcess, log: (line: string) => void): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  if (groupAlive(pgid)) {
    log(`serverless-offline did not stop within ${STOP_GRACE_MS} ms; killing it`);
    signalGroup(pgid, 'SIGKILL');
    const killDeadline = Date.now() + 2_000;
    while (groupAlive(pgid) && Date.now() < killDeadline) await sleep(50);
  }
  child.stdin?.destroy();
}

/** Whether something accepts TCP connections on 127.0.0.1:port now. */
function accepts(portNumber: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port: portNumber });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
    socket.once('error', () => done(false));
  });
}

/**
 * Resolves once offline listens on every port (a connection only: no request
 * reaches a handler); rejects if offline exits or the time runs out.
 */
async function waitUntilListening(child: ChildProcess, ports: number[], stopped: () => boolean): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (const portNumber of ports) {
    while (!(await accepts(portNumber))) {
      if (exited || stopped()) throw new Error('serverless-offline exited before it was ready (its output is above)');
      if (Date.now() > deadline) throw new Error(`serverless-offline did not listen on 127.0.0.1:${portNumber} within ${READY_TIMEOUT_MS / 1000} s`);
      await sleep(250);
    }
    if (exited || stopped()) throw new Error('serverless-offline exited before it was ready (its output is above)');
  }
}

/**
 * Loads the manage function once through offline's Lambda endpoint with an HTTP
 * event for an unknown route (404 before any token check, nothing recorded): a
 * cold start that throws (a misconfiguration, naming its variable) fails the stack now.
 */
async function probeFunction(invokeUrl: string, functionName: string): Promise<void> {
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/',
    rawQueryString: '',
    headers: { 'user-agent': 'middle-management-dev' },
    requestContext: {
      http: { method: 'GET', path: '/', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'middle-management-dev' },
      requestId: 'middle-management-dev-probe',
      routeKey: '$default',
      stage: '$default',
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
  const response = await fetch(invokeUrl, { method: 'POST', body: JSON.stringify(event), signal: AbortSignal.timeout(120_000) });
  const text = await response.text();
  let payload: any;
  try {
    payload = JSON.parse(text);
  } catch {
    payload = undefined;
  }
  if (response.status === 404) {
    throw new ServiceError(
      `serverless-offline serves no function named "${functionName}" (${text.trim().slice(0, 300)}); is the manage function's key or name renamed without custom.middleManagement.functionName?`,
    );
  }
  const functionError = response.headers.get('x-amz-function-error');
  if (functionError || (payload && typeof payload.errorMessage === 'string' && payload.statusCode === undefined)) {
    const message = String(payload?.errorMessage ?? text);
    const type = String(payload?.errorType ?? 'Error');
    const configError = type === 'ConfigError' || /^(MANAGE|AWS)_[A-Z0-9_]+: /.test(message);
    throw new FunctionStartError(configError ? message : `the manage function failed at cold start: ${type}: ${message}`, configError);
  }
  if (!response.ok || typeof payload?.statusCode !== 'number') {
    throw new Error(`the manage function's probe got an unexpected answer (HTTP ${response.status}): ${text.slice(0, 500)}`);
  }
  if (payload.statusCode >= 500) {
    throw new FunctionStartError(`the manage function answers ${payload.statusCode}: ${String(payload.body ?? '').slice(0, 500)}`, false);
  }
}

function exampleData(command: string): string {
  return command === 'echo' ? '{"data":{"message":"hello"}}' : '{"data":{}}';
}

function banner(options: {
  facts: ServiceFacts;
  dir: string;
  httpPort: number;
  lambdaPort: number;
  tables: TableReport[];
  dynamoEndpoint: string;
  embeddedDynamo: boolean;
  issuer: DevIssuerState | undefined;
  externalIssuer: string | undefined;
  token: string | undefined;
  tokenHint: string;
  /** The console signs in with the dev issuer (the stack set MANAGE_CONSOLE_*). */
  devConsole: boolean;
  /** MANAGE_CONSOLE_CLIENT_ID is set, by the environment or the plugin block. */
  consoleSet: boolean;
}): string {
  const { facts } = options;
  const api = `http://localhost:${options.httpPort}`;
  const invoke = `http://localhost:${options.lambdaPort}/2015-03-31/functions/${facts.functionName}/invocations`;
  const bearer = options.token ?? '$MM_TOKEN';
  const command = facts.allowList.includes('echo') ? 'echo' : (facts.allowList[0] ?? 'COMMAND');
  const ttl = options.tables.find((table) => table.ttl)?.ttl;
  const lines = [
    '',
    `middle-management local stack is ready (service ${facts.service}, stage ${facts.stage}).`,
    '',
    `  API              ${api}/__manage__`,
    `  Console          ${api}/__manage__/console${
      options.issuer && options.devConsole
        ? ` (sign in as ${Object.keys(DEV_ACCOUNTS).join(', ')}…; the password is the user name)`
        : options.consoleSet
          ? ''
          : ' (no sign-in set: MANAGE_CONSOLE_CLIENT_ID, see docs/console.md)'
    }`,
    `  Lambda invoke    ${invoke}`,
    `  Tables           ${options.tables.map((table) => table.name).join(', ')} at ${options.dynamoEndpoint}${
      options.embeddedDynamo ? ' (embedded dynalite, in memory)' : ttl === 'enabled' ? ' (state table TTL on)' : ''
    }`,
    options.issuer
      ? `  Token issuer     ${options.issuer.issuer} (audience ${options.issuer.audience})`
      : `  Token issuer     ${options.externalIssuer} (tokens come from that issuer)`,
    `  Allowed          ${facts.allowList.length > 0 ? facts.allowList.join(', ') : '(none listed in custom.middleManagement.allowList)'}`,
    `  State            ${relative(process.cwd(), stateDir(options.dir)) || '.'}/`,
    '',
  ];
  if (options.token) {
    lines.push(
      `A development token, valid ${TOKEN_HOURS} hours (more: ${options.tokenHint} --sub NAME --groups a,b):`,
      '',
      `  ${options.token}`,
      '',
      `  export MM_URL=${api} MM_TOKEN=${options.token}`,
      '',
    );
  }
  lines.push(
    'Try (the commands you may run):',
    '',
    `  curl -sS ${api}/__manage__ -H "Authorization: Bearer ${bearer}"`,
    '',
    `  curl -sS -X POST ${api}/__manage__/${command} -H "Authorization: Bearer ${bearer}" -H "Content-Type: application/json" -d '${exampleData(command)}'`,
    '',
    `  curl -sS -X POST ${invoke} -d '{"command":"${command}",${exampleData(command).slice(1)}'`,
    '',
    'Press Ctrl-C to stop.',
    '',
  );
  return lines.join('\n');
}

/**
 * Runs the stack until a signal or offline's exit; resolves with the exit code
 * (0 after Ctrl-C). Rejects, having stopped whatever it started, when it cannot start.
 */
export async function runDev(options: DevOptions): Promise<number> {
  const dir = options.dir;
  const log = options.log ?? ((line: string) => process.stderr.write(`[dev] ${line}\n`));
  const print = options.print ?? ((text: string) => process.stdout.write(text));
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  const stage = options.stage ?? DEFAULT_STAGE;

  const cleanups: Array<() => Promise<void>> = [];
  let stopping = false;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((done) => (finish = done));
  const stopAll = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
    }
  };
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await stopAll();
    finish(code);
  };
  /** A signal may come at any await of the start: start nothing more, and stop what starts late. */
  const own = (cleanup: () => Promise<void>) => {
    if (stopping) void cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
    else cleanups.push(cleanup);
  };
  const checkpoint = () => {
    if (stopping) throw new Error('stopped while starting');
  };
  const onSignal = () => void shutdown(0);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, onSignal);
  cleanups.push(async () => {
    for (const signal of signals) process.off(signal, onSignal);
  });

  try {
    // Settings of the stack itself, before anything starts.
    const httpPort = portFrom(env, 'PORT');
    const lambdaPort = portFrom(env, 'LAMBDA_PORT');
    const dynamoPort = portFrom(env, 'DYNAMODB_PORT');
    portFrom(env, 'ISSUER_PORT');
    const tools = findServiceTools(dir);

    env.PORT = String(httpPort);
    env.LAMBDA_PORT = String(lambdaPort);
    // The SDK's notice that it will drop Node 20 is noise here: Lambda runs nodejs22.x.
    env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    // Worker invocations (`Prefer: respond-async`) go to offline's Lambda endpoint.
    if (!isSet(env.AWS_ENDPOINT_URL_LAMBDA)) env.AWS_ENDPOINT_URL_LAMBDA = `http://127.0.0.1:${lambdaPort}`;
    const embeddedDynamo = !isSet(env.AWS_ENDPOINT_URL_DYNAMODB);
    if (embeddedDynamo) env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${dynamoPort}`;
    // The function signs its calls with keys from the environment, even to dynalite (which ignores them).
    // A profile is not read by the function: against a real DynamoDB, export the profile's keys.
    if (!isSet(env.AWS_ACCESS_KEY_ID) && !embeddedDynamo && isSet(env.AWS_PROFILE)) {
      log(`AWS_PROFILE is set but the function reads keys from the environment only: run \`eval "$(aws configure export-credentials --format env)"\` first to reach ${env.AWS_ENDPOINT_URL_DYNAMODB} with them`);
    } else if (!isSet(env.AWS_ACCESS_KEY_ID)) {
      env.AWS_ACCESS_KEY_ID = 'local';
      env.AWS_SECRET_ACCESS_KEY = 'local';
      delete env.AWS_SESSION_TOKEN;
    }

    const externalIssuer = isSet(env.MANAGE_JWT_ISSUER)
      ? env.MANAGE_JWT_ISSUER
      : isSet(env.MANAGE_JWT_ISSUERS)
        ? 'MANAGE_JWT_ISSUERS'
        : undefined;
    let issuer: DevIssuerState | undefined;
    let devConsole = false;
    if (!externalIssuer) {
      issuer = await loadDevIssuer({ env, serviceDir: dir });
      env.MANAGE_JWT_ISSUER = issuer.issuer;
      env.MANAGE_JWT_AUDIENCE = issuer.audience;
      // A JWKS URI left over from another issuer would point the dev issuer's tokens at the wrong keys.
      delete env.MANAGE_JWT_JWKS_URI;
      // The web console signs in with the dev issuer, unless the environment says otherwise. Every
      // MANAGE_CONSOLE_* is set (empty: unset), so that the block's production values do not mix in.
      if (!isSet(env.MANAGE_CONSOLE_CLIENT_ID)) {
        devConsole = true;
        Object.assign(env, {
          MANAGE_CONSOLE_CLIENT_ID: CONSOLE_CLIENT_ID,
          MANAGE_CONSOLE_ISSUER: issuer.issuer,
          MANAGE_CONSOLE_RESOURCE: issuer.audience,
          MANAGE_CONSOLE_SCOPES: 'openid',
          MANAGE_CONSOLE_TOKEN_USE: 'access',
          MANAGE_CONSOLE_REDIRECT_URI: '',
          MANAGE_CONSOLE_AUTH_ORIGINS: '',
        });
      }
    }

    // Nothing may answer on our ports but us (a stack left running would pass the readiness check).
    await assertPortFree(httpPort, 'PORT');
    await assertPortFree(lambdaPort, 'LAMBDA_PORT');
    if (embeddedDynamo) await assertPortFree(dynamoPort, 'DYNAMODB_PORT');
    if (issuer) await assertPortFree(issuer.port, 'ISSUER_PORT');

    const state = stateDir(dir);
    await mkdir(state, { recursive: true, mode: 0o700 });
    // Its key and pid files are nobody's to commit.
    await writeIfChanged(join(state, '.gitignore'), '# middle-management dev: local state (the dev issuer\'s key, the running stack)\n*\n');
    checkpoint();

    // The service's names, while the local servers start.
    log(`reading the service's configuration (serverless ${tools.serverlessVersion}, stage ${stage})`);
    const region = isSet(env.AWS_REGION) ? env.AWS_REGION : isSet(env.AWS_DEFAULT_REGION) ? env.AWS_DEFAULT_REGION : undefined;
    const printed = printConfig(tools, { env, stage, ...(region ? { region } : {}) });
    printed.catch(() => {});

    if (embeddedDynamo) {
      checkpoint();
      const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
      try {
        server.listen(dynamoPort, '127.0.0.1');
        await once(server, 'listening');
      } catch (error) {
        throw new DevConfigError('DYNAMODB_PORT', `dynalite cannot listen on 127.0.0.1:${dynamoPort}: ${(error as Error).message}`);
      }
      own(
        () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      );
    }
    if (issuer) {
      checkpoint();
      // The console comes back to whichever of the two loopback names the browser used.
      const consoleRedirectUris = [`http://localhost:${httpPort}/__manage__/console`, `http://127.0.0.1:${httpPort}/__manage__/console`];
      const started = await startDevIssuer(issuer, { consoleRedirectUris }).catch((error: Error) => {
        throw new DevConfigError('ISSUER_PORT', `the dev token issuer cannot listen on 127.0.0.1:${issuer!.port}: ${error.message}`);
      });
      own(() => started.close());
    }

    const facts = serviceFacts(await printed, { stage, env });
    checkpoint();
    if (!facts.usesOffline) {
      throw new ServiceError(`the service does not load serverless-offline: add it to \`plugins:\` in ${relative(dir, tools.configFile)} (after ${'serverless-middle-management/plugin'})`);
    }
    env.AWS_REGION = region ?? facts.region ?? 'us-east-1';
    env.MANAGE_AUDIT_TABLE = facts.tables.audit;
    env.MANAGE_STATE_TABLE = facts.tables.state;
    // Worker invocations name the function offline serves.
    env.AWS_LAMBDA_FUNCTION_NAME = facts.functionName;
    // Where build output may go under offline (the plugin points serverless-esbuild's work folder there).
    env.MIDDLE_MANAGEMENT_DEV_STATE_DIR = state;

    const tables = await ensureTables({ endpoint: env.AWS_ENDPOINT_URL_DYNAMODB!, region: env.AWS_REGION, env, tables: facts.tables });
    log(
      `tables at ${env.AWS_ENDPOINT_URL_DYNAMODB}: ${tables
        .map((table) => `${table.name} ${table.created ? 'created' : 'found'}${table.ttl === 'enabled' ? ' (TTL on)' : table.ttl === 'unsupported' ? ' (no TTL here: expired items are ignored when read)' : ''}`)
        .join(', ')}`,
    );

    const preload = join(state, 'exit-with-parent.mjs');
    await writeIfChanged(preload, EXIT_WITH_PARENT_SOURCE);
    checkpoint();
    const child = spawn(
      process.execPath,
      [
        '--enable-source-maps',
        '--import',
        pathToFileURL(preload).href,
        tools.serverlessBin,
        'offline',
        'start',
        '--stage',
        stage,
        ...(region ? ['--region', region] : []),
        '--useInProcess',
        '--host',
        '127.0.0.1',
        '--httpPort',
        String(httpPort),
        '--lambdaPort',
        String(lambdaPort),
        ...(options.offlineArgs ?? []),
      ],
      // Own process group, so that stopping it reaches everything offline spawned.
      { cwd: dir, env, detached: true, stdio: ['pipe', 'inherit', 'inherit'] },
    );
    own(() => stopGroup(child, log));
    log(`serverless-offline is process group ${child.pid}`);
    child.once('exit', (code, signal) => {
      if (stopping) return;
      log(`serverless-offline exited (${signal ?? `code ${code}`})`);
      void shutdown(code || 1);
    });

    const invokeUrl = `http://127.0.0.1:${lambdaPort}/2015-03-31/functions/${facts.functionName}/invocations`;
    await waitUntilListening(child, [lambdaPort, httpPort], () => stopping);
    await probeFunction(invokeUrl, facts.functionName);
    if (issuer) await rememberDevIssuer(issuer, env, dir);

    const record: StackFile = {
      pid: process.pid,
      offlineGroup: child.pid!,
      service: facts.service,
      stage,
      functionName: facts.functionName,
      api: `http://localhost:${httpPort}`,
      invoke: invokeUrl,
      tables: facts.tables,
      dynamoEndpoint: env.AWS_ENDPOINT_URL_DYNAMODB!,
      embeddedDynamo,
      issuer: issuer?.issuer ?? externalIssuer!,
      devIssuer: issuer !== undefined,
      startedAt: new Date().toISOString(),
    };
    checkpoint();
    await writeFile(stackFile(dir), `${JSON.stringify(record, null, 2)}\n`);
    own(async () => {
      // Another stack of this folder (other ports) may have written it since.
      if ((await readStackFile(dir))?.pid === process.pid) await rm(stackFile(dir), { force: true });
    });

    const token = issuer ? await signDevToken({ state: issuer, expiresIn: TOKEN_HOURS * 3600 }) : undefined;
    if (stopping) return await finished;
    print(
      banner({
        facts,
        dir,
        httpPort,
        lambdaPort,
        tables,
        dynamoEndpoint: env.AWS_ENDPOINT_URL_DYNAMODB!,
        embeddedDynamo,
        issuer,
        externalIssuer,
        token,
        tokenHint: options.tokenHint ?? 'npx middle-management dev token',
        devConsole,
        consoleSet: devConsole || isSet(env.MANAGE_CONSOLE_CLIENT_ID) || facts.consoleSet,
      }),
    );
  } catch (error) {
    // Stopping already (a signal, or offline died first: its exit code wins).
    if (stopping) return finished;
    stopping = true;
    await stopAll();
    throw error;
  }
  return finished;
}

export interface DevTokenOptions {
  dir: string;
  env?: NodeJS.ProcessEnv;
  sub?: string;
  groups?: string[];
  username?: string;
  /** Seconds, default 3600. */
  ttl?: number;
}

/** A token of the service's dev issuer (the stack need not be running). */
export async function devToken(options: DevTokenOptions): Promise<string> {
  const env = options.env ?? process.env;
  const running = await readStackFile(options.dir);
  if (running && !running.devIssuer && processAlive(running.pid)) {
    throw new ServiceError(`the running stack trusts ${running.issuer}, not the dev issuer: get a token from that issuer`);
  }
  return signDevToken({
    state: await loadDevIssuer({ env, serviceDir: options.dir }),
    ...(options.sub !== undefined ? { sub: options.sub } : {}),
    ...(options.username !== undefined ? { username: options.username } : {}),
    groups: options.groups ?? [],
    expiresIn: options.ttl ?? 3600,
  });
}
