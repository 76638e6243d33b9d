/**
 * cognito-local (a Cognito user-pool emulator; dev dependency), started for a
 * test on a loopback port: its own process group, its config and database in a
 * temporary directory. Pools, app clients and users are made through its admin
 * API with the AWS SDK's own Cognito client, as an administrator would.
 *
 * `endpoint` is a pass-through recorder in front of the emulator: it forwards
 * every request unchanged and keeps the JSON bodies, so a test can check what
 * `mm` sent (cognito-local 3.23 ignores SECRET_HASH, so the value is checked
 * there; see cognito.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdminAddUserToGroupCommand,
  AdminCreateUserCommand,
  AdminSetUserPasswordCommand,
  CognitoIdentityProviderClient,
  CreateGroupCommand,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
} from '@aws-sdk/client-cognito-identity-provider';

export interface RecordedCall {
  target: string;
  body: Record<string, any>;
}

export interface Pool {
  id: string;
  /** The `iss` of its tokens. */
  issuer: string;
  jwksUri: string;
  clientId: string;
  clientSecret?: string;
}

export interface CognitoLocal {
  /** The emulator itself. */
  directEndpoint: string;
  /** The recorder in front of it: give this to mm. */
  endpoint: string;
  calls: RecordedCall[];
  admin: CognitoIdentityProviderClient;
  createPool(options?: { secret?: boolean; name?: string }): Promise<Pool>;
  /** A user with a permanent password (status CONFIRMED), or with a temporary one (FORCE_CHANGE_PASSWORD). */
  createUser(pool: Pool, username: string, password: string, options?: { temporary?: boolean; email?: string; groups?: string[] }): Promise<void>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url: string, child: ChildProcess, output: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`cognito-local exited with ${child.exitCode}: ${output()}`);
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cognito-local did not answer within ${timeoutMs} ms: ${output()}`);
}

export async function startCognitoLocal(): Promise<CognitoLocal> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-cognito-local-'));
  const port = await freePort();
  const directEndpoint = `http://127.0.0.1:${port}`;
  // Tokens carry iss = IssuerDomain/<pool id>; make it the address it really has.
  mkdirSync(join(dir, '.cognito'));
  writeFileSync(join(dir, '.cognito', 'config.json'), JSON.stringify({ TokenConfig: { IssuerDomain: directEndpoint } }));
  const bin = createRequire(import.meta.url).resolve('cognito-local/lib/bin/start.js');
  let output = '';
  const child = spawn(process.execPath, [bin], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PORT: String(port), HOST: '127.0.0.1', NODE_NO_WARNINGS: '1' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-4000)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-4000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForHealth(directEndpoint, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }

  const calls: RecordedCall[] = [];
  const recorder: Server = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const target = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
    try {
      calls.push({ target, body: JSON.parse(body.toString('utf8') || '{}') });
    } catch {
      calls.push({ target, body: {} });
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && name !== 'host' && name !== 'connection' && name !== 'content-length') headers[name] = value;
    }
    try {
      const upstream = await fetch(`${directEndpoint}${req.url ?? '/'}`, { method: req.method ?? 'POST', headers, ...(body.length ? { body } : {}) });
      const text = Buffer.from(await upstream.arrayBuffer());
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/x-amz-json-1.1' }).end(text);
    } catch (error) {
      res.writeHead(502).end(String(error));
    }
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;

  const admin = new CognitoIdentityProviderClient({
    endpoint: directEndpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });

  return {
    directEndpoint,
    endpoint,
    calls,
    admin,
    async createPool(options = {}) {
      const pool = await admin.send(new CreateUserPoolCommand({ PoolName: options.name ?? `mm-${Math.random().toString(36).slice(2, 8)}` }));
      const id = pool.UserPool!.Id!;
      const client = await admin.send(
        new CreateUserPoolClientCommand({
          UserPoolId: id,
          ClientName: 'mm-cli',
          GenerateSecret: options.secret === true,
          ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
        }),
      );
      return {
        id,
        issuer: `${directEndpoint}/${id}`,
        jwksUri: `${directEndpoint}/${id}/.well-known/jwks.json`,
        clientId: client.UserPoolClient!.ClientId!,
        ...(client.UserPoolClient!.ClientSecret ? { clientSecret: client.UserPoolClient!.ClientSecret } : {}),
      };
    },
    async createUser(pool, username, password, options = {}) {
      await admin.send(
        new AdminCreateUserCommand({
          UserPoolId: pool.id,
          Username: username,
          TemporaryPassword: password,
          MessageAction: 'SUPPRESS',
          UserAttributes: [{ Name: 'email', Value: options.email ?? `${username}@example.com` }],
        }),
      );
      if (!options.temporary) {
        await admin.send(new AdminSetUserPasswordCommand({ UserPoolId: pool.id, Username: username, Password: password, Permanent: true }));
      }
      for (const group of options.groups ?? []) {
        await admin.send(new CreateGroupCommand({ UserPoolId: pool.id, GroupName: group })).catch(() => undefined);
        await admin.send(new AdminAddUserToGroupCommand({ UserPoolId: pool.id, Username: username, GroupName: group }));
      }
    },
    async close() {
      admin.destroy();
      await new Promise<void>((resolve) => {
        recorder.closeAllConnections?.();
        recorder.close(() => resolve());
      });
      await stop();
    },
  };
}
