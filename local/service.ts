/**
 * What the local stack needs to know about the Serverless service it runs: where
 * its own `serverless` and `serverless-offline` are installed, and, from its
 * resolved configuration (`serverless print`), the names of the manage function
 * and of its two tables.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';

/** The file names the Serverless Framework v3 looks for, in its order. */
const CONFIG_FILES = ['serverless.yml', 'serverless.yaml', 'serverless.json', 'serverless.js', 'serverless.cjs', 'serverless.mjs', 'serverless.ts'];
const PLUGIN_PACKAGE = 'serverless-middle-management';
const PRINT_TIMEOUT_MS = 120_000;

/** A problem with the service folder the user can fix; printed without a stack trace. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
}

export interface ServiceTools {
  dir: string;
  configFile: string;
  /** The service's own `serverless` executable (its bin script). */
  serverlessBin: string;
  serverlessVersion: string;
}

export function findConfigFile(dir: string): string {
  const found = CONFIG_FILES.find((name) => existsSync(join(dir, name)));
  if (!found) {
    throw new ServiceError(
      `no serverless.yml (or ${CONFIG_FILES.slice(1).join(', ')}) in ${dir}: run \`npx middle-management dev\` in your Serverless service's folder`,
    );
  }
  return join(dir, found);
}

/** The package.json of `name` as the service resolves it, or undefined. */
function packageJsonOf(dir: string, name: string): string | undefined {
  const require = createRequire(join(dir, 'package.json'));
  try {
    return require.resolve(`${name}/package.json`);
  } catch {
    // An `exports` map may hide package.json: walk up from the entry to the package's folder.
  }
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    return undefined;
  }
  for (let folder = dirname(entry); dirname(folder) !== folder; folder = dirname(folder)) {
    if (basename(folder) === name && existsSync(join(folder, 'package.json'))) return join(folder, 'package.json');
  }
  return undefined;
}

/** `serverless` and `serverless-offline` from the service's own node_modules: never ours. */
export function findServiceTools(dir: string): ServiceTools {
  const configFile = findConfigFile(dir);
  const serverlessPackage = packageJsonOf(dir, 'serverless');
  if (!serverlessPackage) {
    throw new ServiceError(
      `the Serverless Framework is not installed in ${dir}; install it (v3 or its maintained fork osls):\n  npm install --save-dev serverless@npm:osls serverless-offline`,
    );
  }
  if (!packageJsonOf(dir, 'serverless-offline')) {
    throw new ServiceError(`serverless-offline is not installed in ${dir}; install it:\n  npm install --save-dev serverless-offline`);
  }
  const manifest = JSON.parse(readFileSync(serverlessPackage, 'utf8')) as { version?: string; bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : (manifest.bin?.serverless ?? manifest.bin?.sls);
  if (!bin) throw new ServiceError(`${serverlessPackage} names no serverless executable`);
  return { dir, configFile, serverlessBin: resolve(dirname(serverlessPackage), bin), serverlessVersion: manifest.version ?? 'unknown' };
}

/** The service's configuration with every variable resolved, as `serverless print` shows it. */
export async function printConfig(tools: ServiceTools, options: { env: NodeJS.ProcessEnv; stage: string; region?: string }): Promise<Record<string, any>> {
  const args = [tools.serverlessBin, 'print', '--format', 'json', '--stage', options.stage, ...(options.region ? ['--region', options.region] : [])];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, args, { cwd: tools.dir, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), PRINT_TIMEOUT_MS);
    child.once('error', fail);
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      done({ code: exitCode, stdout: out, stderr: err });
    });
  });
  const start = stdout.indexOf('{');
  if (code !== 0 || start < 0) {
    throw new ServiceError(`\`serverless print\` failed in ${tools.dir}:\n${(stderr || stdout).trim()}`);
  }
  try {
    return JSON.parse(stdout.slice(start)) as Record<string, any>;
  } catch (error) {
    throw new ServiceError(`\`serverless print\` in ${tools.dir} printed no JSON: ${(error as Error).message}`);
  }
}

export interface ServiceFacts {
  service: string;
  stage: string;
  region: string | undefined;
  /** The key in `functions:` (`manage` unless custom.middleManagement.functionName renames it). */
  functionKey: string;
  /** The deployed name, which offline's Lambda endpoint serves too. */
  functionName: string;
  tables: { audit: string; state: string };
  /** The configured allowlist, for the example line printed at start (may be empty). */
  allowList: string[];
  /** The service lists serverless-middle-management/plugin. */
  usesPlugin: boolean;
  usesOffline: boolean;
  /** The web console has sign-in settings in the configuration (`custom.middleManagement.console.clientId` or MANAGE_CONSOLE_CLIENT_ID). */
  consoleSet: boolean;
}

function stringValue(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' && !value.includes('${') ? value.trim() : undefined;
}

function listValue(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return typeof value === 'string' ? value.split(',').map((item) => item.trim()).filter(Boolean) : [];
}

/** What the stack needs from the resolved configuration; the environment wins where it names a value. */
export function serviceFacts(config: Record<string, any>, options: { stage: string; env: NodeJS.ProcessEnv }): ServiceFacts {
  const service = stringValue(typeof config.service === 'object' ? config.service?.name : config.service);
  if (!service) throw new ServiceError('the service has no name (`service:` in serverless.yml)');
  const stage = options.stage;
  const block: Record<string, any> = config.custom?.middleManagement ?? {};
  const functionKey = stringValue(block.functionName) ?? 'manage';
  const fn: Record<string, any> = config.functions?.[functionKey] ?? {};
  const plugins: unknown[] = Array.isArray(config.plugins) ? config.plugins : Array.isArray(config.plugins?.modules) ? config.plugins.modules : [];
  const usesPlugin = plugins.some((name) => typeof name === 'string' && name.startsWith(PLUGIN_PACKAGE));
  if (!usesPlugin && !config.functions?.[functionKey]) {
    throw new ServiceError(
      `the service has no \`${functionKey}\` function: add the plugin (plugins: [${PLUGIN_PACKAGE}/plugin] and a custom.middleManagement block)`,
    );
  }
  const table = (variable: string, setting: string, suffix: string) =>
    stringValue(options.env[variable]) ??
    stringValue(fn.environment?.[variable]) ??
    stringValue(config.provider?.environment?.[variable]) ??
    stringValue(block[setting]) ??
    // The plugin's default names.
    `${service}-${stage}-mm-${suffix}`;
  return {
    service,
    stage,
    region: stringValue(config.provider?.region),
    functionKey,
    functionName: stringValue(fn.name) ?? `${service}-${stage}-${functionKey}`,
    tables: {
      audit: table('MANAGE_AUDIT_TABLE', 'auditTableName', 'audit'),
      state: table('MANAGE_STATE_TABLE', 'stateTableName', 'state'),
    },
    allowList: listValue(options.env.MANAGE_ALLOW_LIST ?? block.allowList ?? fn.environment?.MANAGE_ALLOW_LIST ?? config.provider?.environment?.MANAGE_ALLOW_LIST),
    usesPlugin,
    usesOffline: plugins.some((name) => name === 'serverless-offline'),
    consoleSet: Boolean(stringValue(block.console?.clientId) ?? stringValue(fn.environment?.MANAGE_CONSOLE_CLIENT_ID)),
  };
}
