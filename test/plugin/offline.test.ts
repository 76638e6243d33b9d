/**
 * The plugin under `serverless offline`, in a service that has NOT patched
 * serverless-offline: a pristine copy of 14.8.2 is installed in the fixture, and a direct invocation
 * that throws a `CommandNotAllowed` must still answer `errorType:
 * "CommandNotAllowed"`, as AWS Lambda does (Step Functions' ErrorEquals).
 *
 * Both of offline's runners: in process (what `middle-management dev` uses) and
 * worker threads (its default), where a custom error crosses a structured clone.
 *
 * Also: the local stack's variables are laid over the manage function's
 * environment under `offline` only.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import MiddleManagementPlugin from '../../plugin/index.js';
import { CONTROLLER_PATH, fixOfflineErrorType, ORIGINAL } from '../../plugin/offline.js';
import { cleanEnv, installPlugin, root, serverlessBin, tempDir } from './support.js';

const HANDLER = `
class CommandNotAllowed extends Error {
  name = 'CommandNotAllowed';
}
export const handler = async (event) => {
  if (event.command === 'env') return { allowList: process.env.MANAGE_ALLOW_LIST ?? null, unrelated: process.env.UNRELATED ?? null };
  throw new CommandNotAllowed('Command not allowed');
};
`;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** node_modules of the fixture: the repository's, but a pristine serverless-offline and the built plugin. */
async function fixtureModules(dir: string): Promise<string> {
  const modules = join(dir, 'node_modules');
  await mkdir(modules, { recursive: true });
  for (const entry of await readdir(join(root, 'node_modules'))) {
    if (['serverless-offline', 'serverless-middle-management', '.bin', '.package-lock.json'].includes(entry)) continue;
    await symlink(join(root, 'node_modules', entry), join(modules, entry));
  }
  const offline = join(modules, 'serverless-offline');
  await cp(join(root, 'node_modules', 'serverless-offline'), offline, { recursive: true });
  const controller = join(offline, ...CONTROLLER_PATH);
  const text = await readFile(controller, 'utf8');
  if (!text.includes(ORIGINAL)) {
    // This repository's node_modules may still carry the patch-package patch it used
    // before the plugin: put back the three lines as serverless-offline 14.8.2 ships them.
    await writeFile(
      controller,
      text.replace(
        /errorMessage: err\?\.message \?\? String\(err\),\n\s*\/\/ Like AWS Lambda[^\n]*\n(\s*)errorType: err\?\.name \|\| "Error",\n\s*trace: typeof err\?\.stack === "string" \? err\.stack\.split\("\\n"\) : \[\],/,
        'errorMessage: err.message,\n$1errorType: "Error",\n$1trace: err.stack.split("\\n"),',
      ),
    );
  }
  assert.ok((await readFile(controller, 'utf8')).includes(ORIGINAL), 'the fixture has an unpatched serverless-offline');
  await installPlugin(dir);
  return controller;
}

for (const useInProcess of [true, false]) describe(`under serverless offline (${useInProcess ? 'in process' : 'worker threads'})`, { timeout: 240_000 }, () => {
  let work: string;
  let dir: string;
  let offline: ChildProcess | undefined;
  let lambdaPort: number;
  let output = '';

  before(async () => {
    work = await tempDir('mm-offline-');
    dir = join(work, 'svc');
    await mkdir(dir, { recursive: true });
    await fixtureModules(dir);
    await writeFile(join(dir, 'handler.js'), HANDLER);
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'svc', private: true, type: 'module' }));
    const httpPort = await freePort();
    lambdaPort = await freePort();
    await writeFile(
      join(dir, 'serverless.yml'),
      `service: shop
frameworkVersion: '>=3'
plugins:
  - serverless-middle-management/plugin
  - serverless-offline
provider:
  name: aws
  runtime: nodejs20.x
custom:
  middleManagement:
    handler: handler.handler
    allowList: [reindex]
    jwt: { issuer: https://login.example.com, audience: ops }
  serverless-offline:
    host: 127.0.0.1
    httpPort: ${httpPort}
    lambdaPort: ${lambdaPort}
    useInProcess: ${useInProcess}
    noPrependStageInUrl: true
`,
    );
    offline = spawn(process.execPath, [serverlessBin, 'offline', 'start'], {
      cwd: dir,
      // What `middle-management dev` passes: the local stack's MANAGE_* variables.
      env: await cleanEnv(work, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', MANAGE_ALLOW_LIST: 'noop,echo', UNRELATED: 'x' }),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (/Offline \[http for lambda\] listening/.test(output)) resolve();
      };
      offline!.stdout!.on('data', onData);
      offline!.stderr!.on('data', onData);
      offline!.once('exit', (code) => reject(new Error(`serverless offline exited (${code}):\n${output}`)));
    });
    await ready;
  });

  after(async () => {
    if (offline?.pid && offline.exitCode === null) {
      const exited = once(offline, 'exit');
      process.kill(-offline.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      try {
        process.kill(-offline.pid, 'SIGKILL'); // whatever of the group is left
      } catch {
        // the group is gone
      }
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function invoke(event: unknown): Promise<{ status: number; body: any; functionError: string | null }> {
    const response = await fetch(`http://127.0.0.1:${lambdaPort}/2015-03-31/functions/shop-dev-manage/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
    });
    return { status: response.status, body: await response.json(), functionError: response.headers.get('x-amz-function-error') };
  }

  it('a direct invocation that throws reports the error name as errorType, with no patch applied', async () => {
    const { body, functionError } = await invoke({ command: 'nope' });
    assert.equal(functionError, 'Unhandled');
    assert.equal(body.errorType, 'CommandNotAllowed');
    assert.equal(body.errorMessage, 'Command not allowed');
    // The installed file itself is untouched: the fix happens as it is loaded.
    assert.ok((await readFile(join(dir, 'node_modules', 'serverless-offline', ...CONTROLLER_PATH), 'utf8')).includes(ORIGINAL));
  });

  it('serves the plugin-added function under its deployed name, with the local MANAGE_* variables laid over', async () => {
    const { body } = await invoke({ command: 'env' });
    assert.equal(body.allowList, 'noop,echo');
    // In a worker thread the handler sees only what offline hands it: the overlay did it.
    if (!useInProcess) assert.equal(body.unrelated, null);
  });
});

describe('the offline overlay and fix, in process', () => {
  function fakeServerless(commands: string[]) {
    return {
      service: {
        service: 'shop',
        custom: { middleManagement: { handler: 'handler.handler', allowList: 'reindex' } },
        functions: { orders: { handler: 'orders.handler', environment: { OWN: '1' } } } as Record<string, any>,
        provider: { compiledCloudFormationTemplate: { Resources: {} } },
      },
      serviceDir: root,
      processedInput: { commands },
      getProvider: () => ({ getStage: () => 'dev', naming: { getLogGroupLogicalId: (key: string) => `${key}LogGroup` } }),
      classes: { Error },
    };
  }
  const LOCAL = {
    MANAGE_ALLOW_LIST: 'noop,echo',
    MANAGE_JWT_ISSUER: 'http://127.0.0.1:3005',
    AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000',
    AWS_ENDPOINT_URL_LAMBDA: 'http://127.0.0.1:3002',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SESSION_TOKEN: 'token',
    AWS_LAMBDA_FUNCTION_NAME: 'shop-dev-manage',
    UNRELATED: 'x',
  };

  function run(commands: string[]) {
    const saved = { ...process.env };
    Object.assign(process.env, LOCAL);
    try {
      const serverless = fakeServerless(commands);
      const warnings: string[] = [];
      const plugin = new MiddleManagementPlugin(serverless as any, {}, { log: { warning: (m: string) => warnings.push(m), verbose: () => {} } });
      (plugin.hooks.initialize as () => void)();
      return serverless.service.functions;
    } finally {
      for (const key of Object.keys(LOCAL)) if (saved[key] === undefined) delete process.env[key];
      Object.assign(process.env, saved);
    }
  }

  it('offline: MANAGE_*, AWS_ENDPOINT_URL_*, region, credentials and function name reach the manage function only', () => {
    const functions = run(['offline', 'start']);
    const env = functions.manage.environment;
    for (const [key, value] of Object.entries(LOCAL)) {
      if (key === 'UNRELATED') assert.equal(env[key], undefined);
      else assert.equal(env[key], value, key);
    }
    assert.deepEqual(functions.orders.environment, { OWN: '1' });
  });

  it('package: nothing is read from the environment', () => {
    const env = run(['package']).manage.environment;
    assert.equal(env.MANAGE_ALLOW_LIST, 'reindex');
    for (const key of Object.keys(LOCAL)) if (key !== 'MANAGE_ALLOW_LIST') assert.equal(env[key], undefined, key);
  });

  it('recognises an already fixed serverless-offline (this repository patches its own)', () => {
    const outcome = fixOfflineErrorType(root);
    assert.ok(['already-fixed', 'registered'].includes(outcome.status), JSON.stringify(outcome));
  });
});
