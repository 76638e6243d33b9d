/**
 * `npm start`: the local stack of CONTRACT §6.
 *
 * - an embedded DynamoDB (dynalite) unless AWS_ENDPOINT_URL_DYNAMODB is set; the
 *   audit and state tables are created wherever the endpoint is, if missing;
 * - the development token issuer unless MANAGE_JWT_ISSUER is set;
 * - serverless-offline (stage dev) with every MANAGE_* variable from the environment:
 *   the API on PORT (3000), the Lambda invoke endpoint on LAMBDA_PORT (3002),
 *   which also receives the function's own worker invocations (AWS_ENDPOINT_URL_LAMBDA).
 *
 * Extra arguments go to `serverless offline start` (e.g. `npm start -- --reloadHandler`).
 * Offline runs in its own process group, which is always taken down with this
 * process: on SIGINT/SIGTERM, when offline dies, and (via exit-with-parent.mjs)
 * even when this process is killed outright.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type CreateTableCommandInput,
  DynamoDBClient,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { commandLoaders } from '../example/commands/index.js';
import { auditTableDefinition, stateTableDefinition } from '../src/stores/audit/table.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { loadDevIssuer, rememberDevIssuer, signDevToken, startDevIssuer, type DevIssuerState } from './dev-issuer.js';
import { groupAlive } from './processes.js';

const STAGE = 'dev';
const SERVICE = 'middle-management';
const FUNCTION_NAME = `${SERVICE}-${STAGE}-manage`;
const DEFAULT_ALLOW_LIST = 'noop,echo,sleep,fail';
const READY_TIMEOUT_MS = 180_000;
/** After SIGTERM, how long offline may take before its group is SIGKILLed. */
const STOP_GRACE_MS = 5_000;

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const serverlessBin = createRequire(import.meta.url).resolve('serverless/bin/serverless.js');
const exitWithParent = pathToFileURL(resolve(projectRoot, 'local', 'exit-with-parent.mjs')).href;
const exampleRoot = resolve(projectRoot, 'example');

const log = (message: string) => process.stderr.write(`[start] ${message}\n`);

function isSet(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (!isSet(raw)) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new ConfigError(name, `must be a TCP port number, not "${raw}"`);
  }
  return value;
}

/** What has been started, stopped in reverse order. */
const cleanups: Array<() => Promise<void>> = [];
let stopping = false;

async function stopAll(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
  }
}

async function shutdown(exitCode: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await stopAll();
  }
  process.exit(exitCode);
}


function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** SIGTERM offline's process group, then SIGKILL whatever is left after the grace period. */
async function stopGroup(child: ChildProcess): Promise<void> {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}

async function listen(server: Server, portNumber: number, what: string): Promise<void> {
  try {
    server.listen(portNumber, '127.0.0.1');
    await once(server, 'listening');
  } catch (error) {
    throw new Error(`${what} cannot listen on 127.0.0.1:${portNumber}: ${(error as Error).message}`);
  }
}

/** Create each table that does not exist yet; returns what was done to each. */
async function ensureTables(env: NodeJS.ProcessEnv, region: string, tables: CreateTableCommandInput[]): Promise<string[]> {
  const endpoint = env.AWS_ENDPOINT_URL_DYNAMODB!;
  const client = new DynamoDBClient({
    endpoint,
    region,
    // The stack's environment, not this process's: it may hold the local dummy keys.
    ...(isSet(env.AWS_ACCESS_KEY_ID) && isSet(env.AWS_SECRET_ACCESS_KEY)
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(isSet(env.AWS_SESSION_TOKEN) ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 },
  });
  const done: string[] = [];
  try {
    for (const table of tables) {
      const TableName = table.TableName!;
      try {
        await client.send(new DescribeTableCommand({ TableName }));
        done.push(`${TableName} found`);
        continue;
      } catch (error) {
        if (!(error instanceof ResourceNotFoundException)) {
          throw new Error(`cannot describe table "${TableName}" at ${endpoint}: ${(error as Error).message}`);
        }
      }
      try {
        await client.send(new CreateTableCommand(table));
        await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1 }, { TableName });
      } catch (error) {
        throw new Error(`cannot create table "${TableName}" at ${endpoint}: ${(error as Error).message}`);
      }
      done.push(`${TableName} created`);
    }
    return done;
  } finally {
    client.destroy();
  }
}

/** Resolves once both servers answer HTTP; rejects if offline exits or the time runs out. */
async function waitUntilReady(child: ChildProcess, urls: string[]): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (const url of urls) {
    for (;;) {
      if (exited || stopping) throw new Error('serverless-offline exited before it was ready');
      try {
        // Any HTTP answer (a 401, a 404) means the server is up.
        await fetch(url, { signal: AbortSignal.timeout(2_000) }).then((response) => response.body?.cancel());
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`serverless-offline did not answer at ${url} within ${READY_TIMEOUT_MS / 1000} s`);
        await sleep(250);
      }
    }
  }
}

function banner(options: {
  httpPort: number;
  lambdaPort: number;
  tableNames: string[];
  dynamoEndpoint: string;
  embeddedDynamo: boolean;
  issuer: DevIssuerState | undefined;
  externalIssuer: string | undefined;
  token: string | undefined;
}): string {
  const api = `http://localhost:${options.httpPort}`;
  const invoke = `http://localhost:${options.lambdaPort}/2015-03-31/functions/${FUNCTION_NAME}/invocations`;
  const bearer = options.token ?? '$MM_TOKEN';
  const lines = [
    '',
    `middle-management local stack is ready (stage ${STAGE}).`,
    '',
    `  API              ${api}/__manage__`,
    `  Lambda invoke    ${invoke}`,
    `  Tables           ${options.tableNames.join(', ')} at ${options.dynamoEndpoint}${options.embeddedDynamo ? ' (embedded dynalite, in memory)' : ''}`,
    options.issuer
      ? `  Token issuer     ${options.issuer.issuer} (audience ${options.issuer.audience})`
      : `  Token issuer     ${options.externalIssuer} (tokens come from that issuer)`,
    '',
  ];
  if (options.token) {
    lines.push(
      'A development token, valid 12 hours (more: npm run token -- --sub NAME --groups a,b):',
      '',
      `  ${options.token}`,
      '',
      `  export MM_URL=${api} MM_TOKEN=${options.token}`,
      '',
    );
  }
  lines.push(
    'Try:',
    '',
    `  curl -sS -X POST ${api}/__manage__/echo -H "Authorization: Bearer ${bearer}" -H "Content-Type: application/json" -d '{"data":{"message":"hello"}}'`,
    '',
    `  curl -sS -X POST ${invoke} -d '{"command":"echo","data":{"message":"hello"}}'`,
    '',
    'Press Ctrl-C to stop.',
    '',
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const httpPort = port(env, 'PORT', 3000);
  const lambdaPort = port(env, 'LAMBDA_PORT', 3002);
  const dynamoPort = port(env, 'DYNAMODB_PORT', 8000);
  env.PORT = String(httpPort);
  env.LAMBDA_PORT = String(lambdaPort);

  // Defaults only when unset, as serverless.yml does: an empty MANAGE_ALLOW_LIST allows nothing.
  env.MANAGE_ALLOW_LIST ??= DEFAULT_ALLOW_LIST;
  // The same names as serverless.yml gives stage dev.
  env.MANAGE_AUDIT_TABLE ??= `${SERVICE}-${STAGE}-audit`;
  env.MANAGE_STATE_TABLE ??= `${SERVICE}-${STAGE}-state`;
  // Local only: the SDK wants credentials and a region even for dynalite.
  if (!isSet(env.AWS_ACCESS_KEY_ID) && !isSet(env.AWS_PROFILE)) {
    env.AWS_ACCESS_KEY_ID = 'local';
    env.AWS_SECRET_ACCESS_KEY = 'local';
    delete env.AWS_SESSION_TOKEN;
  }
  // The SDK's notice that it will drop Node 20 is noise here: Lambda runs nodejs22.x.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  if (!isSet(env.AWS_REGION)) env.AWS_REGION = isSet(env.AWS_DEFAULT_REGION) ? env.AWS_DEFAULT_REGION : 'us-east-1';

  // Worker invocations (`Prefer: respond-async`) go to offline's Lambda endpoint.
  if (!isSet(env.AWS_ENDPOINT_URL_LAMBDA)) env.AWS_ENDPOINT_URL_LAMBDA = `http://127.0.0.1:${lambdaPort}`;

  const embeddedDynamo = !isSet(env.AWS_ENDPOINT_URL_DYNAMODB);
  if (embeddedDynamo) env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${dynamoPort}`;

  const externalIssuer = isSet(env.MANAGE_JWT_ISSUER) ? env.MANAGE_JWT_ISSUER : undefined;
  let issuer: DevIssuerState | undefined;
  if (!externalIssuer) {
    issuer = await loadDevIssuer({ env });
    env.MANAGE_JWT_ISSUER = issuer.issuer;
    env.MANAGE_JWT_AUDIENCE = issuer.audience;
    // A JWKS URI left over from another issuer would point the dev issuer's tokens at the wrong keys.
    delete env.MANAGE_JWT_JWKS_URI;
  }

  // Same check as the Lambda's cold start, before anything is started.
  const config = loadConfig(env, Object.keys(commandLoaders));

  if (embeddedDynamo) {
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await listen(server, dynamoPort, 'dynalite (DYNAMODB_PORT)');
    cleanups.push(
      () =>
        new Promise<void>((resolvePromise) => {
          server.closeAllConnections();
          server.close(() => resolvePromise());
        }),
    );
  }
  // DynamoDB TTL is not set up locally (dynalite has none); the state store ignores expired items itself.
  const tables = await ensureTables(env, config.region, [
    auditTableDefinition(config.auditTable),
    stateTableDefinition(config.stateTable),
  ]);
  log(`tables at ${env.AWS_ENDPOINT_URL_DYNAMODB}: ${tables.join(', ')}`);

  if (issuer) {
    const running = await startDevIssuer(issuer).catch((error: Error) => {
      throw new Error(`the dev token issuer cannot listen on 127.0.0.1:${issuer!.port} (ISSUER_PORT): ${error.message}`);
    });
    cleanups.push(() => running.close());
  }

  const child = spawn(
    process.execPath,
    [
      '--enable-source-maps',
      '--import',
      exitWithParent,
      serverlessBin,
      'offline',
      'start',
      '--stage',
      STAGE,
      ...process.argv.slice(2),
    ],
    // Own process group, so that stopping it reaches everything offline spawned.
    { cwd: exampleRoot, env, detached: true, stdio: ['pipe', 'inherit', 'inherit'] },
  );
  cleanups.push(() => stopGroup(child));
  log(`serverless-offline is process group ${child.pid}`);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    log(`serverless-offline exited (${signal ?? `code ${code}`})`);
    void shutdown(code ?? 1);
  });

  await waitUntilReady(child, [`http://127.0.0.1:${lambdaPort}/`, `http://127.0.0.1:${httpPort}/__manage__`]);
  if (issuer) await rememberDevIssuer(issuer, env);

  const token = issuer ? await signDevToken({ state: issuer, expiresIn: 12 * 3600 }) : undefined;
  process.stdout.write(
    banner({
      httpPort,
      lambdaPort,
      tableNames: [config.auditTable, config.stateTable],
      dynamoEndpoint: env.AWS_ENDPOINT_URL_DYNAMODB!,
      embeddedDynamo,
      issuer,
      externalIssuer,
      token,
    }),
  );
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => void shutdown(0));
}

main().catch(async (error: unknown) => {
  // Already stopping: on a signal, or because offline died (its exit code wins).
  if (stopping) return;
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(error instanceof ConfigError ? `Configuration error: ${message}\n` : `npm start failed: ${message}\n`);
  await shutdown(1);
});
